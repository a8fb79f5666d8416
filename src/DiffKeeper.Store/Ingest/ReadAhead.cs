using System.Collections.Concurrent;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Has the kernel read the files queued for the capture workers before they get to them, on a thread of its own.
/// A worker reads one file at a time with blocking <c>pread</c>s, so a cold tree (an upper layer evicted from the
/// page cache, a benchmark that drops caches) would keep one request in flight per worker and wait on the disk for
/// every small file and at every readahead miss of a large one. This thread walks the same files in queue order
/// and asks for all of each (<c>POSIX_FADV_WILLNEED</c>, in <see cref="Piece"/> steps), staying at most
/// <see cref="Window"/> bytes ahead of what the workers have read. The advice is issued here and not in the
/// walker or a worker because <c>WILLNEED</c> allocates the pages and submits the reads synchronously in the
/// calling thread (measured: a worker advising its own next 32 MiB read slower than the kernel's readahead alone).
/// A file a worker has already taken is skipped: the kernel's sequential readahead follows the worker's reads.
/// On a warm tree every advice finds its pages cached and costs a page-cache lookup.
/// </summary>
internal sealed unsafe class ReadAhead : IIngestPacer, IDisposable
{
    /// <summary>Bytes advised ahead of the workers at most: enough to keep the disk busy, small against the page cache.</summary>
    private const long Window = 64L << 20;
    /// <summary>One advice: a large file is requested in steps, so the window is respected inside it.</summary>
    private const long Piece = 4L << 20;

    private readonly BlockingCollection<(byte[] AbsZ, long Size, long Seq)> _files = new();
    private readonly IIngestPacer? _inner;
    private readonly Thread _thread;
    private readonly object _gate = new(); // Monitor.Wait/PulseAll: not a System.Threading.Lock
    private long _queued;
    /// <summary>The sequence number after the last job a worker took (jobs are taken in queue order).</summary>
    private long _taken;
    /// <summary>Bytes the workers have read; bytes of the queued files passed by this thread (advised or skipped).</summary>
    private long _consumed, _position;
    private volatile bool _waiting, _stopped;
    private bool _disposed;

    /// <param name="inner">The caller's pacer: told of every buffer read after this one counts it.</param>
    public ReadAhead(IIngestPacer? inner)
    {
        _inner = inner;
        _thread = new Thread(Run) { IsBackground = true, Name = "ingest-readahead" };
        _thread.Start();
    }

    /// <summary>A file is queued for the workers (walker only, in queue order). Returns its sequence number.</summary>
    public long Add(byte[] absZ, long size)
    {
        long seq = _queued++;
        if (size > 0) _files.Add((absZ, size, seq));
        return seq;
    }

    /// <summary>A worker took the job with sequence number <paramref name="seq"/>.</summary>
    public void Taken(long seq)
    {
        long cur;
        while ((cur = Volatile.Read(ref _taken)) <= seq && Interlocked.CompareExchange(ref _taken, seq + 1, cur) != cur) { }
    }

    /// <summary>A worker read <paramref name="bytes"/> of a queued file.</summary>
    public void Consumed(long bytes)
    {
        Interlocked.Add(ref _consumed, bytes);
        if (_waiting) lock (_gate) Monitor.PulseAll(_gate);
        _inner?.Consumed(bytes);
    }

    /// <summary>Ends the thread at once (the workers are done, or failed): what is not advised yet never will be.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = _stopped = true;
        _files.CompleteAdding();
        lock (_gate) Monitor.PulseAll(_gate);
        _thread.Join();
        _files.Dispose();
    }

    private void Run()
    {
        foreach (var (absZ, size, seq) in _files.GetConsumingEnumerable())
        {
            if (_stopped) break;
            if (seq < Volatile.Read(ref _taken)) { _position += size; continue; }
            int fd;
            fixed (byte* p = absZ) fd = Libc.OpenToRead(p);
            if (fd < 0) { _position += size; continue; } // gone or unreadable: the worker reports it
            try
            {
                for (long off = 0; off < size && !_stopped; off += Piece)
                {
                    long n = Math.Min(Piece, size - off);
                    WaitForRoom(n);
                    Libc.posix_fadvise(fd, off, n, Libc.POSIX_FADV_WILLNEED); // only a hint: failures change nothing
                    _position += n;
                }
            }
            finally { Libc.close(fd); }
        }
    }

    /// <summary>Blocks while advising <paramref name="n"/> more bytes would put this thread over the window ahead.</summary>
    private void WaitForRoom(long n)
    {
        if (_position + n - Volatile.Read(ref _consumed) <= Window) return;
        lock (_gate)
        {
            _waiting = true;
            while (!_stopped && _position + n - Volatile.Read(ref _consumed) > Window) Monitor.Wait(_gate, 50);
            _waiting = false;
        }
    }
}
