using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Io;

/// <summary>
/// Copies one descriptor to another on a small dedicated thread, with poll(2) on both sides so that a
/// cancellation eventfd can always stop it (a plain blocking read on a FIFO could never be interrupted).
/// Both descriptors are switched to non-blocking. Stops on end of file, on EIO (a pty master whose slave closed)
/// or when cancelled; then runs <c>onDone</c> (which typically closes the destination).
/// </summary>
internal sealed class StreamCopier
{
    private const int BufferSize = 32 * 1024;
    private readonly int _source;
    private readonly int _destination;
    private readonly int _cancelFd;
    private readonly Action? _onDone;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private StreamCopier(int source, int destination, int cancelFd, Action? onDone)
    {
        _source = source;
        _destination = destination;
        _cancelFd = cancelFd;
        _onDone = onDone;
    }

    /// <summary>Completes when the copy has ended and <c>onDone</c> ran.</summary>
    public Task Completion => _done.Task;

    public static StreamCopier Start(FileDescriptor source, FileDescriptor destination, CancelSignal cancel, Action? onDone, string name)
    {
        source.SetNonBlocking();
        destination.SetNonBlocking();
        var copier = new StreamCopier(source.Value, destination.Value, cancel.Fd, onDone);
        var thread = new Thread(copier.Run, maxStackSize: 128 * 1024) { IsBackground = true, Name = name };
        thread.Start();
        return copier;
    }

    private unsafe void Run()
    {
        byte[] buffer = new byte[BufferSize];
        try
        {
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    if (!WaitFor(_source, LibC.POLLIN)) return;
                    nint n = LibC.read(_source, p, BufferSize);
                    if (n < 0)
                    {
                        int errno = LibC.LastErrno;
                        if (errno == LibC.EINTR || errno == LibC.EAGAIN) continue;
                        return; // EIO from a pty master once its slave is gone means end of output.
                    }
                    if (n == 0) return;
                    if (!WriteAll(p, (int)n)) return;
                }
            }
        }
        finally
        {
            try { _onDone?.Invoke(); } catch { /* closing is best effort */ }
            _done.TrySetResult();
        }
    }

    private unsafe bool WriteAll(byte* p, int count)
    {
        int done = 0;
        while (done < count)
        {
            nint n = LibC.write(_destination, p + done, count - done);
            if (n >= 0) { done += (int)n; continue; }
            int errno = LibC.LastErrno;
            if (errno == LibC.EINTR) continue;
            if (errno == LibC.EAGAIN) { if (!WaitFor(_destination, LibC.POLLOUT)) return false; continue; }
            return false;
        }
        return true;
    }

    /// <summary>Waits until <paramref name="fd"/> is ready; false when cancelled or the descriptor is invalid.</summary>
    private unsafe bool WaitFor(int fd, short events)
    {
        var fds = stackalloc LibC.PollFd[2];
        while (true)
        {
            fds[0] = new LibC.PollFd { Fd = fd, Events = events };
            fds[1] = new LibC.PollFd { Fd = _cancelFd, Events = LibC.POLLIN };
            int rc = LibC.poll(fds, 2, -1);
            if (rc < 0)
            {
                if (LibC.LastErrno == LibC.EINTR) continue;
                return false;
            }
            if (fds[1].Revents != 0) return false;
            if ((fds[0].Revents & LibC.POLLNVAL) != 0) return false;
            // POLLHUP/POLLERR: let read/write report it (a hung-up pipe may still hold data to drain).
            return true;
        }
    }
}

/// <summary>An eventfd that, once signalled, stays readable: every copier polling it stops.</summary>
internal sealed class CancelSignal : IDisposable
{
    private readonly FileDescriptor _fd;

    public CancelSignal()
    {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        if (fd < 0) throw new ErrnoException(LibC.LastErrno, "eventfd");
        _fd = new FileDescriptor(fd);
    }

    public int Fd => _fd.Value;

    public unsafe void Cancel()
    {
        if (_fd.IsClosed) return;
        ulong one = 1;
        LibC.write(_fd.Value, (byte*)&one, 8);
    }

    public void Dispose() => _fd.Dispose();
}
