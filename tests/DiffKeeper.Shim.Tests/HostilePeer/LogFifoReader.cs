using System.Text;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// Holds the bundle's <c>log</c> FIFO open for reading, as containerd does, and keeps what the shim logs (shown
/// when a test fails). Non-blocking reads polled from a background task, so disposing never hangs.
/// </summary>
internal sealed class LogFifoReader : IDisposable
{
    private readonly int _fd;
    private readonly StringBuilder _text = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;

    public LogFifoReader(string path)
    {
        _fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (_fd < 0) throw new IOException($"open {path} failed");
        _pump = Task.Run(PumpAsync);
    }

    public string Text
    {
        get { lock (_text) return _text.ToString(); }
    }

    private async Task PumpAsync()
    {
        var buffer = new byte[8192];
        while (!_stop.IsCancellationRequested)
        {
            int n = Drain(buffer);
            if (n > 0)
            {
                lock (_text) _text.Append(Encoding.UTF8.GetString(buffer, 0, n));
                continue;
            }
            try { await Task.Delay(50, _stop.Token); } catch (OperationCanceledException) { }
        }
    }

    private unsafe int Drain(byte[] buffer)
    {
        fixed (byte* p = buffer) return (int)Tmds.Linux.LibC.read(_fd, p, buffer.Length);
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _pump.Wait(TimeSpan.FromSeconds(1)); } catch { }
        Libc.Close(_fd);
    }
}
