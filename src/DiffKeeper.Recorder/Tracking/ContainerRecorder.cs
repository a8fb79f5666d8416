using System.Collections.Concurrent;
using System.Diagnostics;
using DiffKeeper.Bpf;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Recorder.Capture;
using DiffKeeper.Recorder.Config;
using DiffKeeper.Recorder.Metrics;
using DiffKeeper.Recorder.Spool;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>
/// The daemon's core: tracked containers, the frame loop (one thread: drain the kernel's dirty set, resolve and
/// capture, once per frame) and the hand-off of exit states to the spool worker. Calls from the shim only register
/// or flag containers and append events; nothing they do waits for a frame or an ingest.
/// </summary>
internal sealed partial class ContainerRecorder : IDisposable
{
    private readonly DaemonConfig _config;
    private readonly RecordingStore _store;
    private readonly Ingester _ingester;
    private readonly IChangeSource _capture;
    private readonly DaemonMetrics _metrics;
    private readonly Action<string> _log;
    private readonly FrameProcessor _frames;
    private readonly object _gate = new();   // held for a whole frame, and to add or remove a container
    private readonly Dictionary<uint, TrackedContainer> _bySlot = [];
    private readonly ConcurrentDictionary<string, TrackedContainer> _byKey = new(StringComparer.Ordinal);
    /// <summary>Recordings of containers not (or no longer) tracked live, by ns/id: lifecycle events after exit (delete).</summary>
    private readonly ConcurrentDictionary<string, RecordingInfo> _recent = new(StringComparer.Ordinal);
    /// <summary>Containers whose live capture ended, by recording id, until their exit state is in (the same
    /// namespace/id may already be tracked again by then, as a new container).</summary>
    private readonly ConcurrentDictionary<ulong, TrackedContainer> _exiting = new();
    private readonly ManualResetEventSlim _wake = new();
    private readonly HashSet<TrackedContainer> _lastFrameOf = []; // frame thread only (RunFrame)
    private volatile bool _stopping;
    /// <summary>Set before the API server closes its connections at shutdown (a `record` session ended by that close
    /// says the daemon stopped, not that its CLI went away).</summary>
    private volatile bool _shuttingDown;
    private Thread? _thread;
    private uint _nextSlot;
    private ulong _lastLost;

    public SpoolWorker Spool { get; }
    public long StartedAt { get; } = NowNs();
    /// <summary>Containers recorded live right now (not those exited and waiting for their exit state).</summary>
    public int TrackedCount => _byKey.Values.Count(t => !t.Exiting);
    public bool CaptureAttached => _capture.Attached;
    /// <summary>Nothing recorded, live or waiting for its exit state: a private daemon may stop.</summary>
    public bool Idle => _byKey.IsEmpty && Spool.Backlog == 0;

    /// <summary>The daemon is about to close its API connections and stop.</summary>
    public void BeginShutdown() => _shuttingDown = true;

    public ContainerRecorder(DaemonConfig config, RecordingStore store, IChangeSource capture, DaemonMetrics metrics, Action<string> log)
    {
        _config = config;
        _store = store;
        _ingester = new Ingester(store) { Workers = Math.Clamp(Environment.ProcessorCount, 1, 2) };
        _capture = capture;
        _metrics = metrics;
        _log = log;
        _frames = new FrameProcessor(store, _ingester, config.MaxLiveFileSize, metrics, log);
        Spool = new SpoolWorker(this, store, _ingester, config, metrics, log);
        metrics.AddGauge("diffkeeper_containers_tracked", "Containers recorded live right now.", () => TrackedCount);
        metrics.AddGauge("diffkeeper_capture_attached", "1 when the eBPF change capture is attached.", () => _capture.Attached ? 1 : 0);
        metrics.AddGauge("diffkeeper_kernel_events_total", "Dirty-inode events seen by the eBPF programs.", () => _capture.Counters.Events);
        metrics.AddGauge("diffkeeper_kernel_events_merged_total", "Kernel events folded into an inode already dirty in the frame.", () => _capture.Counters.Merged);
        metrics.AddGauge("diffkeeper_kernel_events_coalesced_total", "Kernel events already covered by a fresh entry of the same writer (the entry left untouched: the cheap path of a write burst).", () => _capture.Counters.Coalesced);
        metrics.AddGauge("diffkeeper_kernel_events_lost_total", "Kernel events lost (dirty set full): each loss is a gap and a full rescan.", () => _capture.Counters.Lost);
        metrics.AddGauge("diffkeeper_spool_backlog", "Spool entries (exit states) waiting to be ingested.", () => Spool.Backlog);
    }

    public static long NowNs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    public void Start()
    {
        _thread = new Thread(FrameLoop) { Name = "frames", IsBackground = true };
        _thread.Start();
        Spool.Start();
    }

    // ---- API ------------------------------------------------------------------------------------------------

    public TrackResponse Track(TrackRequest req)
    {
        var c = req.Container ?? throw new TtrpcException(TtrpcStatusCode.InvalidArgument, "Track: no container");
        if (c.Namespace.Length == 0 || c.Id.Length == 0) throw new TtrpcException(TtrpcStatusCode.InvalidArgument, "Track: container namespace and id are required");
        var response = new TrackResponse { SpoolDir = _config.EffectiveSpoolDir };
        if (ContainerIdentity.RecordingDisabled(c))
        {
            response.Recording = false;
            response.Reason = $"{ContainerIdentity.RecordAnnotation}=false";
            return response;
        }
        var key = TrackedContainer.KeyOf(c.Namespace, c.Id);
        if (_byKey.TryGetValue(key, out var existing) && !existing.Exiting)
        {
            // The shim retried after a timeout: the first call did the work.
            response.RecordingId = existing.Recording.Id;
            response.Recording = true;
            return response;
        }
        string keep = c.Annotations.TryGetValue(ContainerIdentity.KeepAnnotation, out var k) && k is "always" or "failure" ? k : _config.Keep;
        long createdAt = req.CreatedAt is { } ts ? ts.Seconds * 1_000_000_000L + ts.Nanos : NowNs();
        var rec = ContainerIdentity.NewRecording(c, createdAt);
        rec.Labels[ContainerIdentity.ResolutionLabel] = FormatFrame(_config.Frame);
        var events = new List<RecordedEvent>
        {
            new() { Time = createdAt, Kind = EventKinds.Create, Pid = c.InitPid > 0 ? c.InitPid : null, Detail = ContainerIdentity.Describe(c) },
        };
        string? noLive = null;
        if (c.UpperDir.Length == 0)
            noLive = $"the rootfs is not an overlay (rootfs type \"{(c.RootfsType.Length > 0 ? c.RootfsType : "unknown")}\"): " +
                     "no file changes can be recorded for this container";
        else if (!Directory.Exists(c.UpperDir))
            noLive = $"the upper directory {c.UpperDir} does not exist: no file changes can be recorded live";
        else if (!_capture.Available)
            noLive = $"live change capture is unavailable ({_capture.UnavailableReason}): only the exit state is recorded";
        else if (TrackedCount >= _config.MaxContainers)
            noLive = $"the daemon already records {TrackedCount} containers live (limits.max_containers): only the exit state is recorded";
        ulong mntns = c.MountNamespace != 0 ? c.MountNamespace : MountNamespaceOf(c.InitPid);
        if (noLive == null && mntns == 0)
            noLive = $"the container's mount namespace is unknown (init pid {c.InitPid}): only the exit state is recorded";
        rec.Labels[ContainerIdentity.CaptureLabel] = noLive == null ? "ebpf" : c.UpperDir.Length == 0 ? "none" : "exit-only";
        CreateRecording(rec, events, createdAt, noLive);
        response.RecordingId = rec.Id;
        response.Recording = true;
        if (noLive != null)
        {
            response.Reason = noLive;
            _recent[key] = rec;
            _log($"track {key}: recording {rec.IdText}, {noLive}");
            return response;
        }

        TrackedContainer tc;
        lock (_gate)
        {
            tc = new TrackedContainer
            {
                Info = c, Recording = rec, Slot = ++_nextSlot, Tree = new UpperTree(c.UpperDir),
                Filter = PathFilter.From(c.Annotations), Keep = keep, LowerDirs = [.. c.LowerDirs], MountNamespace = mntns,
            };
            // Baseline before the container can run (it is created, not started): the upper directory's map, and its
            // content (usually none) as the state at created_at.
            lock (tc.WriteLock) _frames.Baseline(tc, createdAt);
            _bySlot[tc.Slot] = tc;
            _byKey[key] = tc;
            _recent[key] = rec;
            try
            {
                if (!ChangeCapture.HasMultigrainTimestamps(c.UpperDir)) _capture.RequireCtimeSetHook();
                _capture.Track(mntns, tc.Slot);
            }
            catch (BpfException e)
            {
                _bySlot.Remove(tc.Slot);
                _byKey.TryRemove(key, out _);
                var why = $"live change capture could not start ({e.Message}): only the exit state is recorded";
                rec.Labels[ContainerIdentity.CaptureLabel] = "exit-only";
                lock (tc.WriteLock) _store.AddEvents(rec, [new RecordedEvent { Time = createdAt, Kind = EventKinds.Gap, Detail = why }]);
                _metrics.Gaps.Add(1);
                _log($"track {key}: recording {rec.IdText}, {why}");
                response.Reason = why;
                return response;
            }
        }
        _log($"track {key}: recording {rec.IdText}, slot {tc.Slot}, mount ns {mntns}, upper {c.UpperDir}");
        return response;
    }

    /// <summary>A new recording with its first events, and the gap saying why it is not recorded live (if so).</summary>
    private void CreateRecording(RecordingInfo rec, List<RecordedEvent> events, long time, string? noLive)
    {
        if (noLive != null)
        {
            events.Add(new RecordedEvent { Time = time, Kind = EventKinds.Gap, Detail = noLive });
            _metrics.Gaps.Add(1);
        }
        _store.CreateRecording(rec);
        _store.AddEvents(rec, events);
        _metrics.RecordingsCreated.Add(1);
    }

    public void Lifecycle(LifecycleRequest req)
    {
        var key = TrackedContainer.KeyOf(req.Namespace, req.Id);
        _byKey.TryGetValue(key, out var tc);
        var rec = tc?.Recording ?? _recent.GetValueOrDefault(key);
        if (rec == null) { _log($"lifecycle {req.Kind} of {key}: not recorded, ignored"); return; }
        long time = req.Time is { } ts ? ts.Seconds * 1_000_000_000L + ts.Nanos : NowNs();
        var e = new RecordedEvent { Time = time, Kind = req.Kind, Pid = req.Pid > 0 ? req.Pid : null };
        if (req.ExecId.Length > 0) e.Detail = "exec " + req.ExecId;
        if (req.Kind == EventKinds.Exit)
        {
            if (req.ExecId.Length > 0) { e.Kind = "exec-exit"; e.Detail = $"exec {req.ExecId} exited with status {req.ExitStatus}"; }
            else if (rec.ExitTime != null) return; // the exit state's ingest already recorded it
            else e.Detail = req.ExitStatus.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        lock (tc?.WriteLock ?? rec) _store.AddEvents(rec, [e]);
        if (req.Kind == EventKinds.Delete && tc == null) _recent.TryRemove(key, out _);
    }

    public void Exited(ExitedRequest req)
    {
        var key = TrackedContainer.KeyOf(req.Namespace, req.Id);
        string? entry = null;
        if (req.SpoolEntry.Length > 0)
        {
            entry = Path.GetFullPath(req.SpoolEntry);
            var spool = Path.GetFullPath(_config.EffectiveSpoolDir).TrimEnd('/') + "/";
            // The entry is ingested and then deleted: never a path outside the spool.
            if (!entry.StartsWith(spool, StringComparison.Ordinal))
                throw new TtrpcException(TtrpcStatusCode.InvalidArgument, $"Exited: spool entry {req.SpoolEntry} is not under the spool {spool}");
        }
        if (_byKey.TryGetValue(key, out var tc)) StopLive(tc);
        long exitedAt = req.ExitedAt is { } ts ? ts.Seconds * 1_000_000_000L + ts.Nanos : NowNs();
        if (entry != null) Spool.Enqueue(entry);
        else
        {
            // Nothing frozen (the shim could not): the exit itself is still recorded, and the missing state said.
            var rec = tc?.Recording ?? _recent.GetValueOrDefault(key);
            if (rec == null) return;
            Task.Run(async () =>
            {
                if (tc != null) await tc.Drained.Task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
                lock (tc?.WriteLock ?? rec)
                {
                    _store.AddEvents(rec, [
                        new RecordedEvent { Time = exitedAt, Kind = EventKinds.Gap, Detail = "the shim froze no exit state (no spool entry): the last recorded moment stands in for it" },
                        new RecordedEvent { Time = exitedAt, Kind = EventKinds.Exit, Detail = req.ExitStatus.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                    ]);
                }
                RecordingKept?.Invoke(rec, (int)req.ExitStatus);
                if (tc != null) Finished(tc);
            });
        }
    }

    public StatusResponse Status() => new()
    {
        Version = Program.Version, Store = _store.Directory, SpoolDir = _config.EffectiveSpoolDir,
        ContainersTracked = (uint)TrackedCount, CaptureAttached = _capture.Attached,
    };

    /// <summary>
    /// Live capture ends (the init exited): untracked in the kernel now, drained by the next frame. Not under
    /// <see cref="_gate"/>: Exited is on the shim's Delete path, and a frame in progress holds the gate for as long
    /// as it reads what changed (measured 57–173 ms per Exited during bench-overhead's 3,000-file and 64 MiB mmap
    /// containers when it waited). The kernel forgets the container first and only then is it flagged: a frame that
    /// sees the flag before its drain drains everything the container's processes did (<see cref="RunFrame"/>).
    /// </summary>
    private void StopLive(TrackedContainer tc)
    {
        if (!tc.BeginExit()) return;
        try
        {
            if (tc.CgroupId != 0) _capture.UntrackCgroup(tc.CgroupId);
            else _capture.Untrack(tc.MountNamespace);
        }
        catch (BpfException e) { _log($"{tc.Key}: untrack failed: {e.Message}"); }
        _exiting[tc.Recording.Id] = tc;
        tc.Exiting = true;
        _wake.Set();
    }

    /// <summary>The tracked container of a spool entry, if this daemon process records it live.</summary>
    public TrackedContainer? FindTracked(string ns, string id, ulong? recordingId)
    {
        if (recordingId is ulong r && _exiting.TryGetValue(r, out var exiting)) return exiting;
        return _byKey.TryGetValue(TrackedContainer.KeyOf(ns, id), out var tc) && (recordingId == null || tc.Recording.Id == recordingId) ? tc : null;
    }

    public void StopLiveFor(TrackedContainer tc) => StopLive(tc);

    /// <summary>Called when a recording is complete and kept (the daemon's push, config `push`).</summary>
    public Action<RecordingInfo, int>? RecordingKept;

    /// <summary>The exit state of a container is recorded: the daemon forgets its live state.</summary>
    public void Finished(TrackedContainer tc)
    {
        _byKey.TryRemove(new KeyValuePair<string, TrackedContainer>(tc.Key, tc));
        _exiting.TryRemove(tc.Recording.Id, out _);
        if (!_byKey.ContainsKey(tc.Key)) _recent[tc.Key] = tc.Recording;
    }

    public void Forget(string ns, string id) => _recent.TryRemove(TrackedContainer.KeyOf(ns, id), out _);

    public void Remember(string ns, string id, RecordingInfo rec) => _recent[TrackedContainer.KeyOf(ns, id)] = rec;

    // ---- the frame loop ---------------------------------------------------------------------------------------

    private void FrameLoop()
    {
        var drained = new List<DirtyInode>(4096);
        var bySlot = new Dictionary<uint, List<DirtyInode>>();
        var sw = new Stopwatch();
        var next = Stopwatch.GetTimestamp();
        long frameTicks = (long)(_config.Frame.TotalSeconds * Stopwatch.Frequency);
        while (!_stopping)
        {
            next += frameTicks;
            long wait = next - Stopwatch.GetTimestamp();
            if (wait > 0) _wake.Wait(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency));
            else next = Stopwatch.GetTimestamp(); // behind: no burst of catch-up frames
            _wake.Reset();
            long late = Stopwatch.GetTimestamp() - next;
            var gcBefore = (Gen0: GC.CollectionCount(0), Gen2: GC.CollectionCount(2), Pause: GC.GetTotalPauseDuration());
            sw.Restart();
            try { RunFrame(drained, bySlot); }
            catch (Exception e) { _log($"frame failed: {e}"); }
            _metrics.FrameTook(sw.Elapsed);
            if (sw.Elapsed.TotalMilliseconds > 1.5 * _config.Frame.TotalMilliseconds || late > frameTicks / 2)
                _log($"slow frame: {sw.Elapsed.TotalMilliseconds:0.0} ms (started {late * 1000.0 / Stopwatch.Frequency:0.0} ms late; " +
                     $"waited {_frameStats.GateWaitMs:0.0} ms for the frame gate, drain {_frameStats.DrainMs:0.0} ms of {drained.Count} inodes; " +
                     $"{FrameDetail()}; GC gen0 +{GC.CollectionCount(0) - gcBefore.Gen0}, gen2 +{GC.CollectionCount(2) - gcBefore.Gen2}, " +
                     $"paused {(GC.GetTotalPauseDuration() - gcBefore.Pause).TotalMilliseconds:0.0} ms)");
            // Off the shim's path: Untrack leaves the programs attached for a linger (CaptureLoader.DetachLinger).
            try { _capture.DetachIfIdle(); }
            catch (Exception e) { _log($"detaching the idle capture failed: {e.Message}"); }
        }
        // Last frame: whatever the kernel still holds.
        try { RunFrame(drained, bySlot); } catch (Exception e) { _log($"last frame failed: {e}"); }
    }

    /// <summary>What the last frame spent its time on, for the slow-frame log line (text made only for a slow frame).</summary>
    private (double GateWaitMs, double DrainMs) _frameStats;

    /// <summary>One container's share of a frame: numbers kept every frame, formatted only when the frame was slow.</summary>
    private readonly record struct ContainerFrameStat(TrackedContainer C, double LockMs, double ProcessMs, int Inodes, int Rechecks, FrameProcessor.Summary Frame, double TotalMs)
    {
        public override string ToString() =>
            $"{C.Key}: lock {LockMs:0.0} ms, process {ProcessMs:0.0} ms ({Inodes} inodes, {Rechecks} re-checks, {Frame}); total {TotalMs:0.0} ms";
    }

    private readonly List<ContainerFrameStat> _containerStats = []; // frame thread only

    private string FrameDetail() => _containerStats.Count > 0 ? string.Join("; ", _containerStats) : "no container";

    private void RunFrame(List<DirtyInode> drained, Dictionary<uint, List<DirtyInode>> bySlot)
    {
        long t0 = Stopwatch.GetTimestamp();
        _containerStats.Clear();
        lock (_gate)
        {
            double gateMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            drained.Clear();
            // Containers flagged exiting before this drain are untracked in the kernel already (StopLive): this drain
            // is their last. One flagged while the frame runs stays for the next frame's drain.
            var lastFrameOf = _lastFrameOf;
            lastFrameOf.Clear();
            foreach (var t in _bySlot.Values) if (t.Exiting) lastFrameOf.Add(t);
            // Everything the kernel recorded before this moment is in the drain: once processed, the recording is
            // complete up to here.
            long drainedAt = NowNs();
            long td = Stopwatch.GetTimestamp();
            _capture.Drain(drained);
            double drainMs = Stopwatch.GetElapsedTime(td).TotalMilliseconds;
            long now = NowNs();
            foreach (var l in bySlot.Values) l.Clear();
            foreach (var d in drained)
            {
                if (!bySlot.TryGetValue(d.Slot, out var l)) bySlot[d.Slot] = l = [];
                l.Add(d);
            }
            ulong lost = _capture.Counters.Lost;
            bool rescan = lost > _lastLost;
            ulong lostNow = lost - _lastLost;
            _lastLost = lost;
            foreach (var tc in _bySlot.Values.ToList())
            {
                var items = bySlot.TryGetValue(tc.Slot, out var l) ? l : [];
                long tl = Stopwatch.GetTimestamp();
                double lockMs = 0, processMs = 0;
                int recheck = tc.Recheck.Count;
                FrameProcessor.Summary processed = default;
                try
                {
                    lock (tc.WriteLock)
                    {
                        lockMs = Stopwatch.GetElapsedTime(tl).TotalMilliseconds;
                        long tp = Stopwatch.GetTimestamp();
                        recheck = tc.Recheck.Count;
                        if (items.Count > 0 || tc.Recheck.Count > 0)
                        {
                            _frames.Process(tc, items, now);
                            processed = _frames.LastFrame;
                        }
                        processMs = Stopwatch.GetElapsedTime(tp).TotalMilliseconds;
                        // A live recording's newest moment is the last frame, not its last change: `export --at now`
                        // and `end` work while the container runs, at most one frame behind.
                        if (drainedAt > tc.Recording.LastMoment)
                        {
                            tc.Recording.LastMoment = drainedAt;
                            _store.SaveRecording(tc.Recording);
                        }
                        if (rescan)
                        {
                            // Which container lost what is unknown: every tracked one gets the gap and the rescan.
                            _store.AddEvents(tc.Recording, [new RecordedEvent
                            {
                                Time = now, Kind = EventKinds.Gap,
                                Detail = $"capture lost {lostNow} changes; next full rescan at {Moments.Format(now)}",
                            }]);
                            _metrics.Gaps.Add(1);
                            _frames.FullRescan(tc, now);
                        }
                    }
                }
                catch (Exception e)
                {
                    _log($"{tc.Key}: frame failed: {e.Message}");
                }
                _containerStats.Add(new ContainerFrameStat(tc, lockMs, processMs, items.Count, recheck, processed, Stopwatch.GetElapsedTime(tl).TotalMilliseconds));
                if (lastFrameOf.Contains(tc))
                {
                    // Out of the frame loop; still findable by the spool worker (and lifecycle calls) until its
                    // exit state is in (Finished).
                    _bySlot.Remove(tc.Slot);
                    tc.Drained.TrySetResult();
                }
            }
            _frameStats = (gateMs, drainMs);
        }
    }

    private static string FormatFrame(TimeSpan t) =>
        t.TotalMilliseconds % 1000 == 0 ? $"{t.TotalSeconds:0}s" : $"{t.TotalMilliseconds:0.###}ms";

    /// <summary>The inode of /proc/PID/ns/mnt (what the eBPF filter compares with the writer's mount namespace).</summary>
    public static ulong MountNamespaceOf(int pid)
    {
        if (pid <= 0) return 0;
        var z = DiffKeeper.Store.Native.Libc.CString(System.Text.Encoding.ASCII.GetBytes($"/proc/{pid}/ns/mnt"));
        // stat, not lstat: the magic link resolves to the namespace's nsfs inode.
        return Native.Stat.InodeFollow(z);
    }

    /// <summary>Stops the frame loop (after one last frame) and the spool worker (after the entries queued).</summary>
    public void Stop(TimeSpan spoolGrace)
    {
        _stopping = true;
        _wake.Set();
        _thread?.Join();
        foreach (var tc in _byKey.Values) tc.Drained.TrySetResult();
        Spool.Stop(spoolGrace);
    }

    public void Dispose() => _wake.Dispose();
}
