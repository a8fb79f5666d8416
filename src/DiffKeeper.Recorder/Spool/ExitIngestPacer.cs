using System.Diagnostics;
using DiffKeeper.Store.Ingest;

namespace DiffKeeper.Recorder.Spool;

/// <summary>
/// Keeps an exit-state ingest from costing the containers that are still running. Measured (docs/recorder.md): a
/// 1 GiB exit state ingested at full speed made the next container's 3,000 file creates cost ~17 % more of their own
/// CPU time — shared caches, memory bandwidth and the file system's journal, not scheduling (nice 10 changed
/// nothing, and the disks have no I/O scheduler for ionice). So while at least one other container is recorded live,
/// the ingest reads at most <see cref="BytesPerSecond"/> (a token bucket shared by the ingest workers); with none it
/// runs at full speed. The delay is bounded: once one ingest has been held back <see cref="MaxDelay"/> in total (the
/// waits of its workers summed, so the wall-clock delay is at most that) it finishes at full speed, so a busy node
/// still gets every exit state in bounded time.
/// </summary>
internal sealed class ExitIngestPacer : IIngestPacer
{
    /// <summary>Bytes that may be read at once before the rate applies (one read buffer and a bit).</summary>
    private const long Burst = 2L << 20;

    private readonly Func<bool> _othersLive;
    private readonly Action<TimeSpan> _held;
    private readonly Lock _gate = new();
    /// <summary>When the bytes granted so far have been earned at the rate (Stopwatch ticks).</summary>
    private long _earnedAt;
    private long _heldTicks;
    /// <summary>Set when the daemon stops: the ingest in progress must finish within the shutdown grace.</summary>
    private volatile bool _off;

    public long BytesPerSecond { get; }
    public TimeSpan MaxDelay { get; }

    /// <param name="bytesPerSecond">The rate while others are live; 0 = never paced.</param>
    /// <param name="othersLive">True while another container is recorded live (read per buffer: must be cheap).</param>
    /// <param name="held">Told of every wait (metrics).</param>
    public ExitIngestPacer(long bytesPerSecond, TimeSpan maxDelay, Func<bool> othersLive, Action<TimeSpan> held)
    {
        BytesPerSecond = bytesPerSecond;
        MaxDelay = maxDelay;
        _othersLive = othersLive;
        _held = held;
    }

    /// <summary>A new exit state: its own delay budget.</summary>
    public void Begin()
    {
        lock (_gate) { _heldTicks = 0; _earnedAt = 0; } // the burst is available at once
    }

    /// <summary>From now on nothing is held back (the daemon is stopping).</summary>
    public void Stop() => _off = true;

    public void Consumed(long bytes)
    {
        if (BytesPerSecond <= 0 || bytes <= 0 || _off) return;
        long now = Stopwatch.GetTimestamp();
        long wait;
        lock (_gate)
        {
            if (_heldTicks >= MaxDelay.TotalSeconds * Stopwatch.Frequency || !_othersLive())
            {
                _earnedAt = now; // full speed, and no credit saved up for later
                return;
            }
            long burstTicks = Burst * Stopwatch.Frequency / BytesPerSecond;
            _earnedAt = Math.Max(_earnedAt, now - burstTicks) + bytes * Stopwatch.Frequency / BytesPerSecond;
            wait = _earnedAt - now;
            if (wait <= 0) return;
            _heldTicks += wait;
        }
        var t = TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency);
        Thread.Sleep(t);
        _held(t);
    }
}
