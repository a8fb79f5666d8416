using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Protos.Bootstrap;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// The runtime options containerd writes to the shim's stdin at <c>start</c>: the marshaled options <c>Any</c>
/// (1.6–2.2), or a <c>BootstrapParams</c> whose <c>extensions[].value</c> carries it (2.3+), or nothing at all
/// (<c>/dev/null</c> when there are no options, no stdin when a person runs the shim by hand).
/// </summary>
internal static class RuntimeOptionsInput
{
    /// <summary>Options are a few hundred bytes; 4 MiB is containerd's own message limit for shims.</summary>
    public const int MaxBytes = 4 << 20;

    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Reads stdin (bounded in size and time) and returns the options Any, or null when there is none.</summary>
    public static Any? ReadFromStdin(ShimFlags flags) => Decode(ReadStdin(), flags.Id, flags.Namespace);

    /// <summary>
    /// Both shapes decode as either message (Any's type_url/value are fields 1/2, BootstrapParams' instance_id and
    /// namespace too), so, like upstream, the bytes are BootstrapParams only when those two fields are exactly our
    /// <c>-id</c> and <c>-namespace</c>; then the first extension of a type we read options from is the options.
    /// </summary>
    public static Any? Decode(ReadOnlySpan<byte> data, string id, string ns)
    {
        if (data.IsEmpty) return null;
        BootstrapParams? bootstrap = null;
        try { bootstrap = BootstrapParams.Parser.ParseFrom(data); }
        catch (InvalidProtocolBufferException) { }
        if (bootstrap != null && id.Length > 0 && bootstrap.InstanceId == id && bootstrap.Namespace == ns)
        {
            foreach (var extension in bootstrap.Extensions)
                if (extension.Value != null && Runc.RuncOptions.IsKnownType(extension.Value)) return extension.Value;
            return null;
        }
        try
        {
            return Any.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new Runc.InvalidRuntimeOptionsException("cannot decode the options on stdin: " + e.Message);
        }
    }

    private static byte[] ReadStdin()
    {
        // No stdin (closed fd 0) or a terminal: nobody is handing us options.
        if (LibC.fcntl(0, LibC.F_GETFL, 0) < 0 || LibC.isatty(0) == 1) return [];
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        var deadline = Environment.TickCount64 + (long)ReadTimeout.TotalMilliseconds;
        while (true)
        {
            int wait = (int)Math.Max(0, deadline - Environment.TickCount64);
            if (!WaitReadable(wait))
                throw new IOException($"reading runtime options from stdin: nothing after {ReadTimeout.TotalSeconds:0} s and no end of input");
            int n = Read(chunk);
            if (n < 0) continue; // a non-blocking stdin with nothing yet
            if (n == 0) return buffer.ToArray();
            if (buffer.Length + n > MaxBytes)
                throw new Runc.InvalidRuntimeOptionsException($"more than {MaxBytes} bytes of options on stdin");
            buffer.Write(chunk, 0, n);
        }
    }

    private static unsafe bool WaitReadable(int timeoutMs)
    {
        var pfd = new LibC.PollFd { Fd = 0, Events = LibC.POLLIN };
        while (true)
        {
            int r = LibC.poll(&pfd, 1, timeoutMs);
            if (r > 0) return true; // readable, EOF (POLLHUP) or an error the read reports
            if (r == 0) return false;
            if (LibC.LastErrno != LibC.EINTR) throw new ErrnoException(LibC.LastErrno, "poll stdin");
        }
    }

    /// <summary>Bytes read, 0 at end of input, -1 when a non-blocking stdin has nothing yet.</summary>
    private static unsafe int Read(byte[] chunk)
    {
        fixed (byte* p = chunk)
        {
            while (true)
            {
                var n = LibC.read(0, p, chunk.Length);
                if (n >= 0) return (int)n;
                var errno = LibC.LastErrno;
                if (errno == LibC.EINTR) continue;
                if (errno == LibC.EAGAIN) return -1;
                throw new ErrnoException(errno, "read stdin");
            }
        }
    }
}
