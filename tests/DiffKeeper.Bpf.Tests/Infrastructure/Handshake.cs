namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>
/// Two fifos between a test and a python writer it starts, so that the test drains at an exact point of the
/// writer's work: the writer writes to `r` when it has done a step and reads one byte from `a` before the next; the
/// test waits with <see cref="Wait"/> and lets it go on with <see cref="Go"/>.
/// </summary>
internal sealed class Handshake : IDisposable
{
    private readonly string _ready, _ack;
    private FileStream? _readyStream, _ackStream;

    public Handshake(TempDir scratch)
    {
        _ready = scratch["ready"];
        _ack = scratch["ack"];
        DiffKeeper.TestSupport.Libc.MkFifo(_ready);
        DiffKeeper.TestSupport.Libc.MkFifo(_ack);
    }

    /// <summary>The writer's line that opens its ends of the fifos as `r` and `a` (after `import os`).</summary>
    public string PythonOpen => $"r = os.open('{_ready}', os.O_WRONLY); a = os.open('{_ack}', os.O_RDONLY)\n";

    /// <summary>Waits until the writer has written <paramref name="count"/> bytes to `r` (opening the fifos at the
    /// first call, once the writer runs), and returns them.</summary>
    public byte[] Wait(int count = 1)
    {
        _readyStream ??= new FileStream(_ready, FileMode.Open, FileAccess.Read);
        _ackStream ??= new FileStream(_ack, FileMode.Open, FileAccess.Write);
        var bytes = new byte[count];
        _readyStream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Lets the writer go on.</summary>
    public void Go()
    {
        _ackStream!.WriteByte(1);
        _ackStream.Flush();
    }

    public void Dispose()
    {
        _readyStream?.Dispose();
        _ackStream?.Dispose();
    }
}
