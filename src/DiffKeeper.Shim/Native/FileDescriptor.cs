using System.Runtime.InteropServices;

namespace DiffKeeper.Shim.Native;

/// <summary>An owned raw file descriptor that is closed exactly once.</summary>
internal sealed class FileDescriptor : IDisposable
{
    private int _fd;

    public FileDescriptor(int fd) => _fd = fd;

    public int Value => Volatile.Read(ref _fd);
    public bool IsClosed => Value < 0;

    public static FileDescriptor Open(string path, int flags, int mode = 0)
    {
        int fd = LibC.open(path, flags | LibC.O_CLOEXEC, mode);
        if (fd < 0) throw new ErrnoException(LibC.LastErrno, $"open {path}");
        return new FileDescriptor(fd);
    }

    public static FileDescriptor OpenDevNull(int flags = LibC.O_RDWR) => Open("/dev/null", flags);

    /// <summary>A close-on-exec pipe: (read end, write end).</summary>
    public static unsafe (FileDescriptor Read, FileDescriptor Write) Pipe()
    {
        int* fds = stackalloc int[2];
        LibC.Check(LibC.pipe2(fds, LibC.O_CLOEXEC), "pipe2");
        return (new FileDescriptor(fds[0]), new FileDescriptor(fds[1]));
    }

    public void SetNonBlocking()
    {
        int flags = LibC.Check(LibC.fcntl(Value, LibC.F_GETFL, 0), "fcntl(F_GETFL)");
        LibC.Check(LibC.fcntl(Value, LibC.F_SETFL, flags | LibC.O_NONBLOCK), "fcntl(F_SETFL)");
    }

    /// <summary>Writes all of <paramref name="data"/> (blocking descriptor).</summary>
    public unsafe void WriteAll(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = LibC.write(Value, p + done, data.Length - done);
                if (n < 0)
                {
                    if (LibC.LastErrno == LibC.EINTR) continue;
                    throw new ErrnoException(LibC.LastErrno, "write");
                }
                done += (int)n;
            }
        }
    }

    /// <summary>Reads until end of file (blocking descriptor); small outputs only (runc's messages, pid files).</summary>
    public unsafe byte[] ReadToEnd()
    {
        var buffer = new MemoryStream();
        Span<byte> chunk = stackalloc byte[4096];
        fixed (byte* p = chunk)
        {
            while (true)
            {
                nint n = LibC.read(Value, p, chunk.Length);
                if (n < 0)
                {
                    if (LibC.LastErrno == LibC.EINTR) continue;
                    throw new ErrnoException(LibC.LastErrno, "read");
                }
                if (n == 0) break;
                buffer.Write(chunk[..(int)n]);
            }
        }
        return buffer.ToArray();
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.close(fd);
    }
}
