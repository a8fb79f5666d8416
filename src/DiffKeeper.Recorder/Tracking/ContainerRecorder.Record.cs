using System.Globalization;
using System.Text;
using DiffKeeper.Bpf;
using DiffKeeper.Common.Cgroups;
using DiffKeeper.Common.Mounts;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Recorder.Native;
using DiffKeeper.Store;
using DiffKeeper.Store.Maintenance;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>
/// `diffkeeper record -- CMD`: a plain command recorded like a container. The command runs in a cgroup (v2) of its
/// own that the kernel filter tracks (dk_tracked_cg), so only its process tree is attributed; the "upper directory"
/// is the watched directories' common ancestor, of which only the watched directories (and the way to them) are
/// mapped and recorded. A baseline of the watched directories is the state at start; at the end one last frame and
/// a rescan of the watched directories make the state at exit. The files stay where the command put them.
/// </summary>
internal sealed partial class ContainerRecorder
{
    /// <summary>The namespace of command recordings (their container id is the session name).</summary>
    public const string RecordNamespace = "record";
    public const string RecordRootLabel = "diffkeeper.io/record-root", RecordDirsLabel = "diffkeeper.io/record-dirs";

    /// <param name="recorderGone">Cancelled when the CLI's connection closes: if that comes before RecordEnd (the
    /// CLI was killed), the daemon ends the recording itself (<see cref="EndWithoutRecorder"/>).</param>
    public RecordStartResponse RecordStart(RecordStartRequest req, CancellationToken recorderGone = default)
    {
        if (req.Dirs.Count == 0) throw Invalid("RecordStart: no directory to watch");
        if (req.CgroupId == 0) throw Invalid("RecordStart: the command's cgroup id is required");
        if (req.Keep is not ("" or "always" or "failure")) throw Invalid($"RecordStart: keep \"{req.Keep}\" is not always or failure");
        var dirs = new List<string>();
        foreach (var d in req.Dirs)
        {
            if (!Path.IsPathFullyQualified(d)) throw Invalid($"RecordStart: {d} is not an absolute path");
            var full = Path.GetFullPath(d);
            if (full.Length > 1) full = full.TrimEnd('/');
            if (!Directory.Exists(full)) throw Invalid($"RecordStart: {d} is not a directory");
            if (!dirs.Contains(full)) dirs.Add(full);
        }
        var root = CommonAncestor(dirs);
        if (!Dirents.TryLstat(RawPath.EncodeArg(root), out var rootSt)) throw Invalid($"RecordStart: cannot stat {root}");
        foreach (var d in dirs)
        {
            if (Dirents.TryLstat(RawPath.EncodeArg(d), out var st) && (st.DevMajor, st.DevMinor) == (rootSt.DevMajor, rootSt.DevMinor)) continue;
            throw Invalid($"RecordStart: {d} is on another file system than {root}: record directories of one file system per run");
        }
        var watched = dirs.Select(d => RawPath.EncodeArg(Path.GetRelativePath(root, d) is "." ? "" : Path.GetRelativePath(root, d))).ToList();

        // The store (or its spool) inside a watched directory: never recorded (the daemon's own writes would feed the
        // rescans that record them).
        string? storeExclude = null;
        var storeDir = Path.GetFullPath(_store.Directory).TrimEnd('/');
        if (storeDir.StartsWith(root == "/" ? "/" : root + "/", StringComparison.Ordinal))
            storeExclude = Path.GetRelativePath(root, storeDir);
        string session = req.CgroupPath.Length > 0 ? Path.GetFileName(req.CgroupPath.TrimEnd('/')) : "cgroup-" + req.CgroupId.ToString(CultureInfo.InvariantCulture);
        var key = TrackedContainer.KeyOf(RecordNamespace, session);
        if (_byKey.ContainsKey(key)) throw new TtrpcException(TtrpcStatusCode.AlreadyExists, $"RecordStart: session {session} is already recorded");
        long startedAt = req.StartedAt is { } ts ? ts.Seconds * 1_000_000_000L + ts.Nanos : NowNs();
        var info = new ContainerInfo
        {
            Namespace = RecordNamespace, Id = session, UpperDir = root, RootfsType = "directories", CgroupPath = req.CgroupPath,
            Process = req.Process ?? new OciProcess(),
        };
        var rec = ContainerIdentity.NewRecording(info, startedAt);
        rec.Name = req.Name.Length > 0 ? req.Name : session;
        rec.Labels[ContainerIdentity.ResolutionLabel] = FormatFrame(_config.Frame);
        rec.Labels[RecordRootLabel] = root;
        rec.Labels[RecordDirsLabel] = string.Join(':', dirs);
        if (storeExclude != null) rec.Labels["diffkeeper.io/record-excluded"] = storeExclude + " (the store)";
        string? noLive = null;
        if (!_capture.Available)
            noLive = $"live change capture is unavailable ({_capture.UnavailableReason}): only the states at start and at exit are recorded";
        else if (TrackedCount >= _config.MaxContainers)
            noLive = $"the daemon already records {TrackedCount} containers and commands live (limits.max_containers): only the states at start and at exit are recorded";
        rec.Labels[ContainerIdentity.CaptureLabel] = noLive == null ? "ebpf" : "exit-only";
        var events = new List<RecordedEvent>
        {
            new() { Time = startedAt, Kind = EventKinds.Create, Pid = req.RecorderPid > 0 ? req.RecorderPid : null, Detail = Describe(req, dirs, root) },
        };
        CreateRecording(rec, events, startedAt, noLive);

        var response = new RecordStartResponse { RecordingId = rec.Id, Session = session, Root = root };
        TrackedContainer tc;
        lock (_gate)
        {
            tc = new TrackedContainer
            {
                Info = info, Recording = rec, Slot = ++_nextSlot, Tree = new UpperTree(root, watched), Filter = new PathFilter(null, storeExclude),
                Keep = req.Keep.Length > 0 ? req.Keep : _config.Keep, LowerDirs = [], MountNamespace = 0, CgroupId = req.CgroupId,
            };
            // The state at start: the command has not run yet (the CLI starts it once this call answered).
            lock (tc.WriteLock) _frames.Baseline(tc, startedAt);
            _bySlot[tc.Slot] = tc;
            _byKey[key] = tc;
            _recent[key] = rec;
            if (noLive == null)
            {
                try
                {
                    if (!ChangeCapture.HasMultigrainTimestamps(root)) _capture.RequireCtimeSetHook();
                    // The kernel drops the command's changes outside the watched tree, unless a mount lies inside it
                    // (its walk up the directories cannot cross mounts): then user space alone filters.
                    WatchedTree? kernelTree = MountTable.AnyMountBelow(root) ? null : new WatchedTree(rootSt.DevMajor, rootSt.DevMinor, rootSt.Inode);
                    _capture.TrackCgroup(req.CgroupId, tc.Slot, kernelTree);
                    if (kernelTree == null) _log($"record {session}: a mount lies inside {root}: its changes elsewhere are filtered in user space only");
                }
                catch (BpfException e)
                {
                    noLive = $"live change capture could not start ({e.Message}): only the states at start and at exit are recorded";
                    rec.Labels[ContainerIdentity.CaptureLabel] = "exit-only";
                    lock (tc.WriteLock) _store.AddEvents(rec, [new RecordedEvent { Time = startedAt, Kind = EventKinds.Gap, Detail = noLive }]);
                    _metrics.Gaps.Add(1);
                }
            }
        }
        if (noLive != null) response.Reason = noLive;
        _log($"record {session}: recording {rec.IdText}, cgroup {req.CgroupId}, root {root}, dirs {string.Join(' ', dirs)}{(noLive != null ? ", " + noLive : "")}");
        // Last: a connection already closed runs the callback here and now.
        if (recorderGone.CanBeCanceled) tc.RecorderWatch = recorderGone.Register(() => EndWithoutRecorder(tc, req.RecorderPid));
        return response;
    }

    public RecordEndResponse RecordEnd(RecordEndRequest req)
    {
        var key = TrackedContainer.KeyOf(RecordNamespace, req.Session);
        if (!_byKey.TryGetValue(key, out var tc) || tc.CgroupId == 0)
            throw new TtrpcException(TtrpcStatusCode.NotFound, $"RecordEnd: no recorded command session {req.Session}");
        if (!tc.BeginEnd())
            throw new TtrpcException(TtrpcStatusCode.FailedPrecondition, $"RecordEnd: session {req.Session} is already ending (its connection closed first)");
        tc.RecorderWatch.Unregister();
        long exitedAt = req.ExitedAt is { } ts ? ts.Seconds * 1_000_000_000L + ts.Nanos : NowNs();
        return EndSession(tc, exitedAt, req.ExitStatus, req.Signal, req.Survivors, lostRecorder: null);
    }

    /// <summary>
    /// The CLI's connection closed before its RecordEnd: `record` was killed (SIGKILL, a CI job's timeout), or this
    /// daemon is stopping. Nobody else would end the recording: it stayed live, its cgroup tracked, until the daemon
    /// stopped (and a private daemon never stopped: nobody was left to stop it). Ended here as RecordEnd would, with
    /// what the daemon can know: the command's processes still in its cgroup, the state of the watched directories
    /// now, the exit status unknown. The cgroup, if empty, is removed as `record` would have; one that still holds
    /// processes stays theirs (the daemon never stops the command). Runs on the connection's close; never throws.
    /// </summary>
    private void EndWithoutRecorder(TrackedContainer tc, int recorderPid)
    {
        try
        {
            if (!tc.BeginEnd()) return; // RecordEnd came first
            var cgroup = CommandCgroupPath(tc);
            // Killed with `record` (a job's process group): the command may still be on its way out. A moment for it.
            var survivors = Members(cgroup);
            for (var until = DateTime.UtcNow.AddMilliseconds(250); survivors.Count > 0 && DateTime.UtcNow < until; survivors = Members(cgroup))
                Thread.Sleep(10);
            string who = recorderPid > 0 ? $"diffkeeper record (pid {recorderPid})" : "diffkeeper record";
            string why = _shuttingDown
                ? $"diffkeeperd stopped while {who} waited for the command"
                : $"{who} went away before the command ended (killed?)";
            var r = EndSession(tc, NowNs(), exitStatus: null, signal: 0, survivors, lostRecorder: why);
            string cgroupFate = cgroup == null ? "" : Members(cgroup).Count > 0 ? $"; its cgroup {cgroup} stays with them" : RemoveCgroup(cgroup);
            _log($"record {tc.Info.Id}: {why}: recording {RecordingInfo.FormatId(r.RecordingId)} ended by the daemon, " +
                 $"{survivors.Count} process(es) of the command still run{cgroupFate}");
        }
        catch (Exception e)
        {
            _log($"record {tc.Info.Id}: ending the recording without its CLI failed: {e}");
        }
    }

    /// <summary>The one end of a command's recording (RecordEnd, or the daemon's when the CLI is gone): the last
    /// frame, the survivors and the killing signal said, the state at exit, the exit event, the keep policy.</summary>
    /// <param name="exitStatus">null: unknown (the CLI that waited for the command is gone); such a recording is kept.</param>
    /// <param name="lostRecorder">Why the daemon ends it without RecordEnd (null for RecordEnd).</param>
    private RecordEndResponse EndSession(TrackedContainer tc, long exitedAt, int? exitStatus, int signal, IReadOnlyCollection<string> survivors, string? lostRecorder)
    {
        string session = tc.Info.Id;
        StopLive(tc);
        if (!tc.Drained.Task.Wait(TimeSpan.FromSeconds(10))) _log($"record {session}: the last frame did not finish in 10 s");
        var rec = tc.Recording;
        lock (tc.WriteLock)
        {
            var events = new List<RecordedEvent>();
            string? still = survivors.Count > 0
                ? $"{survivors.Count} process(es) {(lostRecorder != null ? "of the command" : "it started")} still run " +
                  $"({string.Join(", ", survivors)}); what they change from now on is not recorded"
                : null;
            string? gap = lostRecorder != null
                ? $"{lostRecorder}: the recording ends here, with the command's exit status unknown" + (still != null ? "; " + still : "")
                : still != null ? "the recording ends with the command: " + still : null;
            if (gap != null)
            {
                events.Add(new RecordedEvent { Time = exitedAt, Kind = EventKinds.Gap, Detail = gap });
                _metrics.Gaps.Add(1);
            }
            if (signal > 0)
                events.Add(new RecordedEvent { Time = exitedAt, Kind = "signal", Detail = $"the command was killed by signal {signal}" });
            if (events.Count > 0) _store.AddEvents(rec, events);
            // The state at exit: whatever the last frames could not attribute (a write in the same timestamp tick as
            // its capture, an event lost) is found by a rescan of the watched directories, attributed to nobody. Files
            // over the live capture limit are read here (the gap event said only their exit state is recorded).
            _frames.FullRescan(tc, exitedAt, rereadWrittenAfter: rec.Start, exitState: true);
            _store.AddEvents(rec, [new RecordedEvent
            {
                Time = exitedAt, Kind = EventKinds.Exit,
                Detail = exitStatus?.ToString(CultureInfo.InvariantCulture) ?? UnknownExitStatus,
            }]);
        }
        var response = new RecordEndResponse { RecordingId = rec.Id, Kept = true };
        if (tc.Keep == "failure" && exitStatus == 0)
        {
            lock (tc.WriteLock) GarbageCollector.DropRecording(_store, rec.Id);
            response.Kept = false;
            _log($"record {session}: exited 0 and keep=failure: recording {rec.IdText} dropped");
        }
        else
        {
            response.Versions = (ulong)_store.CountVersions(rec.Id);
            response.Events = (ulong)_store.ReadEvents(rec.Id).LongCount();
            _log($"record {session}: exit status {exitStatus?.ToString(CultureInfo.InvariantCulture) ?? UnknownExitStatus}, recording {rec.IdText} complete");
        }
        Finished(tc);
        if (!response.Kept) _recent.TryRemove(tc.Key, out _);
        return response;
    }

    /// <summary>The exit event's detail when the daemon ended the recording without the CLI (no status to parse).</summary>
    public const string UnknownExitStatus = "unknown";

    /// <summary>The command's cgroup as `record` named it, if it is still the directory whose inode the kernel filter
    /// tracked (the path comes from the client: the daemon reads and removes nothing else).</summary>
    private static string? CommandCgroupPath(TrackedContainer tc)
    {
        var path = tc.Info.CgroupPath;
        if (path.Length == 0 || !Path.IsPathFullyQualified(path)) return null;
        return Dirents.TryLstat(RawPath.EncodeArg(path), out var st) && st.Inode == tc.CgroupId ? path : null;
    }

    /// <summary>The processes in the command's cgroup, as "PID COMM" (none without the cgroup).</summary>
    private static List<string> Members(string? cgroup) =>
        cgroup == null ? [] : CgroupMembers.Of(cgroup).Select(m => $"{m.Pid} {m.Comm}").ToList();

    /// <summary>Removes an empty cgroup (rmdir: never one that holds processes); a process that just exited may keep
    /// it busy for a moment. Returns what became of it, for the log.</summary>
    private static string RemoveCgroup(string cgroup)
    {
        var deadline = DateTime.UtcNow.AddSeconds(2);
        while (true)
        {
            try { Directory.Delete(cgroup); return $"; its cgroup {cgroup} removed"; }
            catch (DirectoryNotFoundException) { return ""; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (DateTime.UtcNow >= deadline) return $"; its cgroup {cgroup} could not be removed: {e.Message}";
                Thread.Sleep(20);
            }
        }
    }

    private static TtrpcException Invalid(string message) => new(TtrpcStatusCode.InvalidArgument, message);

    /// <summary>The deepest directory holding every one of <paramref name="dirs"/> (absolute, normalised).</summary>
    public static string CommonAncestor(IReadOnlyList<string> dirs)
    {
        var parts = dirs[0].Split('/', StringSplitOptions.RemoveEmptyEntries).ToList();
        foreach (var d in dirs.Skip(1))
        {
            var p = d.Split('/', StringSplitOptions.RemoveEmptyEntries);
            int n = 0;
            while (n < parts.Count && n < p.Length && parts[n] == p[n]) n++;
            parts.RemoveRange(n, parts.Count - n);
        }
        return "/" + string.Join('/', parts);
    }

    /// <summary>The create event's detail for a command: what ran, where, and what was watched.</summary>
    private static string Describe(RecordStartRequest req, List<string> dirs, string root)
    {
        var sb = new StringBuilder();
        if (req.Process is { } p)
        {
            sb.Append("args: ").Append(string.Join(' ', p.Args.Select(ContainerIdentity.Quote))).Append('\n');
            sb.Append("cwd: ").Append(p.Cwd).Append('\n');
            sb.Append("user: ").Append(p.Uid).Append(':').Append(p.Gid).Append('\n');
            sb.Append("env: ").Append(string.Join(' ', p.EnvNames)).Append('\n');
        }
        sb.Append("watched: ").Append(string.Join(' ', dirs)).Append('\n');
        sb.Append("root: ").Append(root).Append(" (recorded paths are relative to it)\n");
        sb.Append("cgroup: ").Append(req.CgroupPath).Append(" (id ").Append(req.CgroupId).Append(")\n");
        sb.Append("host: ").Append(Environment.MachineName);
        return sb.ToString();
    }
}
