using DiffKeeper.Store.Native;
using System.Collections.Concurrent;
using System.Globalization;
using DiffKeeper.Recorder.Config;
using DiffKeeper.Recorder.Metrics;
using DiffKeeper.Recorder.Native;
using DiffKeeper.Recorder.Tracking;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Maintenance;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Recorder.Spool;

/// <summary>
/// Ingests spool entries (exit states frozen by shims, docs/recorder.md) on one background thread: on Exited, at
/// start-up and on a periodic scan. An entry becomes the recording's state at exited_at (absences included), its
/// exit event, retention (keep=failure drops a recording that exited 0), then it is deleted. A broken manifest is
/// logged and the entry renamed &lt;entry&gt;.bad — never a crash, never retried in a loop.
/// </summary>
internal sealed class SpoolWorker
{
    public const string ManifestName = "manifest.json", UpperName = "upper", BadSuffix = ".bad";
    /// <summary>An entry without a manifest this old is a freeze that died half-way: removed (docs/recorder.md).</summary>
    private static readonly TimeSpan IncompleteAge = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan ScanInterval = TimeSpan.FromSeconds(3);

    private readonly ContainerRecorder _recorder;
    private readonly RecordingStore _store;
    private readonly Ingester _ingester;
    private readonly DaemonConfig _config;
    private readonly DaemonMetrics _metrics;
    private readonly Action<string> _log;
    private readonly BlockingCollection<string> _queue = new();
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly ExitIngestPacer _pacer;
    private Thread? _thread;
    private Timer? _timer;

    public SpoolWorker(ContainerRecorder recorder, RecordingStore store, Ingester ingester, DaemonConfig config, DaemonMetrics metrics, Action<string> log)
    {
        _recorder = recorder;
        _store = store;
        _ingester = ingester;
        _config = config;
        _metrics = metrics;
        _log = log;
        // Paced while any container is recorded live: the one whose exit state this is has stopped live capture.
        _pacer = new ExitIngestPacer(config.PacedRate, config.MaxPacedDelay, () => recorder.TrackedCount > 0,
            held => metrics.SpoolPaced.Add(held.Ticks * 100));
    }

    public int Backlog => _pending.Count;

    public void Start()
    {
        Directory.CreateDirectory(_config.EffectiveSpoolDir);
        Scan();
        _thread = new Thread(Run) { Name = "spool", IsBackground = true };
        _thread.Start();
        _timer = new Timer(_ => { try { Scan(); } catch (Exception e) { _log($"spool scan failed: {e.Message}"); } }, null, ScanInterval, ScanInterval);
    }

    public void Enqueue(string entry)
    {
        if (!_pending.TryAdd(entry, 0)) return;
        try { _queue.Add(entry); }
        catch (InvalidOperationException) { _pending.TryRemove(entry, out _); } // stopping: the next start's scan finds it
    }

    /// <summary>Every &lt;spool&gt;/&lt;namespace&gt;/&lt;entry&gt; with a manifest, oldest first; stale incomplete ones removed.</summary>
    public void Scan()
    {
        var spool = _config.EffectiveSpoolDir;
        if (!Directory.Exists(spool)) return;
        var found = new List<(DateTime, string)>();
        foreach (var nsDir in Directory.EnumerateDirectories(spool))
        {
            foreach (var entry in Directory.EnumerateDirectories(nsDir))
            {
                if (entry.EndsWith(BadSuffix, StringComparison.Ordinal) || Path.GetFileName(entry).StartsWith('.')) continue;
                var manifest = Path.Combine(entry, ManifestName);
                // An empty manifest is a machine crash between the rename and its fsync: incomplete, like none.
                if (File.Exists(manifest) && new FileInfo(manifest).Length > 0) { found.Add((File.GetLastWriteTimeUtc(manifest), entry)); continue; }
                if (_pending.ContainsKey(entry)) continue;
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(entry) > IncompleteAge)
                {
                    _log($"spool: {entry} has no manifest after {IncompleteAge.TotalMinutes} minutes (a freeze that died): removed");
                    RemoveTree(entry);
                }
            }
        }
        foreach (var (_, entry) in found.OrderBy(f => f.Item1)) Enqueue(entry);
    }

    private void Run()
    {
        try
        {
            foreach (var entry in _queue.GetConsumingEnumerable(_stop.Token))
            {
                try { Ingest(entry); }
                catch (SpoolFormatException e) { SetAside(entry, e.Message); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CorruptDataException or NotFoundException)
                {
                    // The store or the file system failed (disk full, …): keep the entry for the next scan.
                    _log($"spool: {entry}: ingest failed, kept for a later try: {e.Message}");
                }
                catch (Exception e)
                {
                    SetAside(entry, "ingest failed: " + e);
                }
                finally { _pending.TryRemove(entry, out _); }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void SetAside(string entry, string why)
    {
        _metrics.SpoolBad.Add(1);
        var bad = entry + BadSuffix;
        try
        {
            if (Directory.Exists(bad)) bad = entry + "." + DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture) + BadSuffix;
            Directory.Move(entry, bad);
            _log($"spool: {entry}: {why} — set aside as {bad}");
        }
        catch (IOException e) { _log($"spool: {entry}: {why} — and it could not be renamed: {e.Message}"); }
    }

    private void Ingest(string entry)
    {
        var manifestPath = Path.Combine(entry, ManifestName);
        if (!File.Exists(manifestPath)) return; // already ingested (queued twice) or removed
        var bytes = File.ReadAllBytes(manifestPath);
        if (bytes.Length == 0) return;           // incomplete (see Scan)
        var m = SpoolManifest.Parse(bytes);
        var tc = _recorder.FindTracked(m.Namespace, m.Id, m.RecordingId);
        if (tc != null)
        {
            // The shim's Exited may not have arrived (its call timed out): live capture ends here either way.
            _recorder.StopLiveFor(tc);
            if (!tc.Drained.Task.Wait(TimeSpan.FromSeconds(10))) _log($"spool: {entry}: the last frame of {tc.Key} did not finish in 10 s; ingesting anyway");
        }
        RecordingInfo? rec = tc?.Recording ?? (m.RecordingId is ulong id ? _store.GetRecording(id) : null);
        var info = m.Container;
        var events = new List<RecordedEvent>();
        long now = ContainerRecorder.NowNs();
        if (rec == null)
        {
            if (ContainerIdentity.RecordingDisabled(info)) { RemoveTree(entry); if (tc != null) _recorder.Finished(tc); return; }
            long start = m.CreatedAt ?? m.ExitedAt;
            rec = ContainerIdentity.NewRecording(info, start);
            rec.Labels[ContainerIdentity.CaptureLabel] = "exit-only";
            _store.CreateRecording(rec);
            _metrics.RecordingsCreated.Add(1);
            events.Add(new RecordedEvent { Time = start, Kind = EventKinds.Create, Pid = info.InitPid > 0 ? info.InitPid : null, Detail = ContainerIdentity.Describe(info) });
            events.Add(new RecordedEvent
            {
                Time = start, Kind = EventKinds.Gap,
                Detail = m.RecordingId == null
                    ? "the recorder was not running while the container ran: only the exit state is recorded"
                    : $"the recorder was not running while the container ran (recording {RecordingInfo.FormatId(m.RecordingId.Value)} is not in this store): only the exit state is recorded",
            });
        }
        else if (tc == null && rec.ExitTime == null && rec.Labels.GetValueOrDefault(ContainerIdentity.CaptureLabel) == "ebpf")
        {
            // Recorded live by an earlier daemon process that stopped (crash, restart) before the container exited.
            long from = rec.LastMoment;
            events.Add(new RecordedEvent
            {
                Time = Math.Max(from, rec.Start) + 1, Kind = EventKinds.Gap,
                Detail = $"the recorder was not running from {Moments.Format(from)} (its last recorded moment) until {Moments.Format(_recorder.StartedAt)} " +
                         "or later: changes in between are missing from the timeline; the exit state is complete",
            });
        }
        var writeLock = tc?.WriteLock ?? rec;
        lock (writeLock)
        {
            // Lifecycle events the daemon did not see (it was down, or the shim's call timed out).
            var seen = _store.ReadEvents(rec.Id).Where(e => e.Kind != EventKinds.Gap).Select(e => (e.Kind, e.Time)).ToHashSet();
            foreach (var e in m.Events)
            {
                string kind = e.Kind == EventKinds.Exit && e.ExecId is { Length: > 0 } ? "exec-exit" : e.Kind;
                if (kind == EventKinds.Exit) continue; // the exit of the init is the entry's own exit event below
                if (seen.Contains((kind, e.Time))) continue;
                events.Add(new RecordedEvent
                {
                    Time = e.Time, Kind = kind, Pid = e.Pid,
                    Detail = kind == "exec-exit" ? $"exec {e.ExecId} exited with status {e.ExitStatus}" : e.ExecId is { Length: > 0 } x ? "exec " + x : null,
                });
            }
            if (m.EventsDropped > 0)
                events.Add(new RecordedEvent { Time = m.ExitedAt, Kind = EventKinds.Gap, Detail = $"the shim dropped {m.EventsDropped} lifecycle events (the recorder did not keep up)" });
            foreach (var err in m.FreezeErrors)
                events.Add(new RecordedEvent { Time = m.ExitedAt, Kind = EventKinds.Gap, Detail = "freezing the exit state: " + err });
            var upper = Path.Combine(entry, UpperName);
            bool hasState = m.Freeze != "none" && Directory.Exists(upper);
            if (!hasState)
                events.Add(new RecordedEvent
                {
                    Time = m.ExitedAt, Kind = EventKinds.Gap,
                    Detail = info.UpperDir.Length == 0 && m.RootfsType is not "overlay"
                        ? $"no exit state: the rootfs is not an overlay (rootfs type \"{m.RootfsType}\")"
                        : $"no exit state: the shim could not freeze the upper directory (freeze \"{m.Freeze}\")",
                });
            if (events.Count > 0) { _store.AddEvents(rec, events); _metrics.Gaps.Add(events.Count(e => e.IsGap)); }
            // The exit may already be recorded (the shim's Lifecycle exit): the state goes at that same moment, so
            // `--at end` is the exit state.
            long exitTime = rec.ExitTime ?? m.ExitedAt;
            if (hasState) IngestExitState(rec, upper, exitTime, PathFilter.From(info.Annotations));
            if (rec.ExitTime == null || rec.ExitStatus != m.ExitStatus)
                _store.AddEvents(rec, [new RecordedEvent { Time = exitTime, Kind = EventKinds.Exit, Pid = info.InitPid > 0 ? info.InitPid : null,
                    Detail = m.ExitStatus.ToString(CultureInfo.InvariantCulture) }]);
        }
        string keep = info.Annotations.TryGetValue(ContainerIdentity.KeepAnnotation, out var k) && k is "always" or "failure" ? k : _config.Keep;
        if (keep == "failure" && m.ExitStatus == 0)
        {
            lock (writeLock) GarbageCollector.DropRecording(_store, rec.Id);
            _log($"spool: {m.Namespace}/{m.Id} exited 0 and keep=failure: recording {rec.IdText} dropped");
        }
        else
        {
            _recorder.Remember(m.Namespace, m.Id, rec);
            _log($"spool: {m.Namespace}/{m.Id}: exit state (status {m.ExitStatus}) ingested into recording {rec.IdText}");
            _recorder.RecordingKept?.Invoke(rec, (int)m.ExitStatus);
        }
        RemoveTree(entry);
        if (tc != null) _recorder.Finished(tc);
        _metrics.SpoolIngested.Add(1);
    }

    /// <summary>
    /// The frozen upper tree becomes the state at exit: every entry captured, and every path the recording held
    /// that is no longer in the tree recorded deleted (absence from the upper layer is a change).
    /// </summary>
    private void IngestExitState(RecordingInfo rec, string upper, long time, PathFilter filter)
    {
        _pacer.Begin();
        if (filter.IsEmpty)
        {
            var s = _ingester.IngestTree(rec, upper, time, pacer: _pacer);
            _metrics.VersionsWritten.Add(s.Changed);
            _metrics.BytesIngested.Add(s.BytesRead);
        }
        else
        {
            // io.diffkeeper/include|exclude: path by path, so nothing filtered out enters the store.
            foreach (var (path, isDir) in WalkRelative(upper))
            {
                if (!filter.Includes(path, isDir)) continue;
                var s = _ingester.IngestPath(rec, upper, path, time, pacer: _pacer);
                _metrics.VersionsWritten.Add(s.Changed);
                _metrics.BytesIngested.Add(s.BytesRead);
            }
        }
        var state = StateQuery.At(_store, rec.Id, time);
        var upperBytes = RawPath.EncodeArg(upper);
        foreach (var v in state.Sorted())
        {
            if (v.IsDeleted || v.Time >= time) continue;
            if (Dirents.TryLstat([.. upperBytes, (byte)'/', .. v.Path], out _)) continue;
            if (!filter.Includes(v.Path, v.Type == EntryType.Directory)) continue;
            _ingester.RecordDeleted(rec, v.Path, time);
            _metrics.VersionsWritten.Add(1);
        }
    }

    private static IEnumerable<(byte[] Path, bool IsDir)> WalkRelative(string root)
    {
        var rootBytes = RawPath.EncodeArg(root);
        var stack = new Stack<byte[]>();
        stack.Push([]);
        while (stack.Count > 0)
        {
            var rel = stack.Pop();
            int fd = Dirents.OpenDirectory(rel.Length == 0 ? rootBytes : [.. rootBytes, (byte)'/', .. rel]);
            if (fd < 0) continue;
            List<DirectoryEntry> entries;
            try { entries = DirectoryReader.ReadEntries(fd); }
            finally { DiffKeeper.Store.Native.Libc.close(fd); }
            foreach (var e in entries)
            {
                var p = RawPath.Join(rel, e.Name);
                bool dir = e.Type == DirectoryEntry.DT_DIR;
                yield return (p, dir);
                if (dir) stack.Push(p);
            }
        }
    }

    private void RemoveTree(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log($"spool: cannot remove {dir}: {e.Message}"); }
        // An emptied namespace directory goes too (the shim re-creates it).
        try
        {
            var parent = Path.GetDirectoryName(dir);
            if (parent != null && Path.GetFullPath(parent) != Path.GetFullPath(_config.EffectiveSpoolDir) && !Directory.EnumerateFileSystemEntries(parent).Any())
                Directory.Delete(parent);
        }
        catch (IOException) { }
    }

    public void Stop(TimeSpan grace)
    {
        _pacer.Stop(); // the grace is for finishing exit states, not for sparing containers that outlive the daemon
        _timer?.Dispose();
        _queue.CompleteAdding();
        if (_thread != null && !_thread.Join(grace))
        {
            _stop.Cancel(); // the entry being ingested finishes; queued ones stay in the spool for the next start
            _thread.Join();
        }
    }
}
