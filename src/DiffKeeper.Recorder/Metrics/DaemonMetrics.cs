using System.Globalization;
using System.Text;

namespace DiffKeeper.Recorder.Metrics;

/// <summary>A monotonically increasing count, safe to bump from any thread.</summary>
internal sealed class Counter(string name, string help)
{
    private long _value;
    public string Name { get; } = name;
    public string Help { get; } = help;
    public long Value => Interlocked.Read(ref _value);
    public void Add(long n) => Interlocked.Add(ref _value, n);
}

/// <summary>A value read when scraped.</summary>
internal sealed class Gauge(string name, string help, Func<double> read)
{
    public string Name { get; } = name;
    public string Help { get; } = help;
    public double Read() => read();
}

/// <summary>
/// The daemon's numbers in the Prometheus text exposition format (version 0.0.4).
/// Written by hand rather than with prometheus-net: the daemon needs a dozen counters and gauges and one plain HTTP
/// GET, and prometheus-net's MetricServer brings HttpListener (the managed HTTP server stack) plus its default
/// process/runtime collectors into a Native AOT process whose memory budget is shared with RocksDB; a few lines of
/// text over a TcpListener cost nothing and cannot break under trimming.
/// </summary>
internal sealed class DaemonMetrics
{
    public Counter ChangeEvents { get; } = new("diffkeeper_change_events_total", "Change events recorded (create, write, delete, rename, chmod …).");
    public Counter VersionsWritten { get; } = new("diffkeeper_versions_written_total", "File versions written by live capture and deletions.");
    public Counter BytesIngested { get; } = new("diffkeeper_bytes_ingested_total", "Bytes read from upper directories and spool entries.");
    public Counter Rechecked { get; } = new("diffkeeper_rechecked_total", "Files captured again because they moved on after being read.");
    public Counter UnresolvedInodes { get; } = new("diffkeeper_unresolved_inodes_total", "Dirty inodes of a tracked container not found in its upper directory map.");
    public Counter Frames { get; } = new("diffkeeper_frames_total", "Frames processed.");
    public Counter Gaps { get; } = new("diffkeeper_gaps_total", "Gap events recorded by the daemon (lost kernel events, daemon downtime …).");
    public Counter SpoolIngested { get; } = new("diffkeeper_spool_entries_ingested_total", "Spool entries (exit states) ingested.");
    public Counter SpoolBad { get; } = new("diffkeeper_spool_entries_bad_total", "Spool entries set aside as .bad.");
    public Counter RecordingsCreated { get; } = new("diffkeeper_recordings_created_total", "Recordings created.");

    private readonly List<Gauge> _gauges = [];
    private long _lastFrameNs, _maxFrameNs;

    public void AddGauge(string name, string help, Func<double> read) => _gauges.Add(new Gauge(name, help, read));

    /// <summary>How long the last frame took to process: the recording lags the container by up to frame + this.</summary>
    public void FrameTook(TimeSpan t)
    {
        long ns = t.Ticks * 100;
        Interlocked.Exchange(ref _lastFrameNs, ns);
        long max;
        while (ns > (max = Interlocked.Read(ref _maxFrameNs)) && Interlocked.CompareExchange(ref _maxFrameNs, ns, max) != max) { }
        Frames.Add(1);
    }

    public double LastFrameSeconds => Interlocked.Read(ref _lastFrameNs) / 1e9;
    public double MaxFrameSeconds => Interlocked.Read(ref _maxFrameNs) / 1e9;

    public string Render()
    {
        var sb = new StringBuilder(4096);
        foreach (var c in new[] { ChangeEvents, VersionsWritten, BytesIngested, Rechecked, UnresolvedInodes, Frames, Gaps, SpoolIngested, SpoolBad, RecordingsCreated })
        {
            sb.Append("# HELP ").Append(c.Name).Append(' ').Append(c.Help).Append('\n');
            sb.Append("# TYPE ").Append(c.Name).Append(" counter\n");
            sb.Append(c.Name).Append(' ').Append(c.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        Gauge("diffkeeper_ingest_lag_seconds", "Processing time of the last frame (the recording trails the container by the frame plus this).", LastFrameSeconds, sb);
        Gauge("diffkeeper_ingest_lag_max_seconds", "Longest frame processing time since start.", MaxFrameSeconds, sb);
        foreach (var g in _gauges)
        {
            double v;
            try { v = g.Read(); } catch (Exception) { v = double.NaN; }
            Gauge(g.Name, g.Help, v, sb);
        }
        return sb.ToString();
    }

    private static void Gauge(string name, string help, double v, StringBuilder sb)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(" gauge\n");
        sb.Append(name).Append(' ').Append(double.IsNaN(v) ? "NaN" : v.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }
}
