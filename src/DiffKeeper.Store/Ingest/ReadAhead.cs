using DiffKeeper.Store.Native;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Starts the kernel reading the files queued for the capture workers before they get to them. A worker reads one
/// file at a time with blocking <c>pread</c>s, so a cold tree (an upper layer evicted from the page cache, a
/// benchmark that drops caches) would be read with only one request in flight per worker, waiting on the disk
/// for every small file. The walker instead asks for the head of each queued file with
/// <c>POSIX_FADV_WILLNEED</c> (asynchronous readahead), keeping up to <see cref="Window"/> bytes requested and not
/// yet taken by a worker; the kernel's sequential readahead covers the rest of a large file while it is read.
/// </summary>
internal sealed unsafe class ReadAhead
{
    /// <summary>Requested-but-not-started bytes at most: enough to keep the disk busy, small against the page cache.</summary>
    private const long Window = 64L << 20;
    /// <summary>The head of a file that is requested ahead.</summary>
    private const long PerFile = 4L << 20;

    private readonly object _gate = new(); // Monitor.Wait/PulseAll: not a System.Threading.Lock
    private long _inFlight;

    /// <summary>Requests the head of a queued file; blocks while the window is full. Returns the bytes to release.</summary>
    public long Request(int dirfd, byte[] nameZ, long size)
    {
        long n = Math.Min(size, PerFile);
        if (n <= 0) return 0;
        lock (_gate)
        {
            while (_inFlight > 0 && _inFlight + n > Window) Monitor.Wait(_gate);
            _inFlight += n;
        }
        int fd;
        fixed (byte* p = nameZ) fd = Libc.openat(dirfd, p, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOATIME, 0);
        if (fd < 0 && Libc.Errno == Libc.EPERM)
            fixed (byte* p = nameZ) fd = Libc.openat(dirfd, p, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (fd >= 0)
        {
            Libc.posix_fadvise(fd, 0, n, Libc.POSIX_FADV_WILLNEED); // only a hint: failures change nothing
            Libc.close(fd);
        }
        return n;
    }

    /// <summary>A worker took a file: its requested bytes leave the window.</summary>
    public void Release(long n)
    {
        if (n <= 0) return;
        lock (_gate)
        {
            _inFlight -= n;
            Monitor.PulseAll(_gate);
        }
    }
}
