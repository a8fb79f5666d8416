using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Mounts;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Protos.Events;
using DiffKeeper.Shim.Protos.Runc;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using Google.Protobuf;
using Status = DiffKeeper.Shim.Protos.TaskTypes.Status;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// One container the shim runs: its bundle, mounted rootfs, init process and execs, cgroup, and the event order
/// rules that span processes (every exec exit is published before the init exit).
/// </summary>
internal sealed class Container
{
    private readonly ShimContext _shim;
    private readonly object _execGate = new();
    private readonly Dictionary<string, ExecProcess> _execs = new();
    private int _activeExecs;
    private ProcessExit? _heldInitExit;

    private Container(ShimContext shim, string id, string bundle, RuncCommand runc, OciSpec spec, bool rootfsMounted,
        RootfsLayout layout)
    {
        _shim = shim;
        Id = id;
        Bundle = bundle;
        Runc = runc;
        Spec = spec;
        RootfsMounted = rootfsMounted;
        Layout = layout;
    }

    public string Id { get; }
    public string Bundle { get; }
    public RuncCommand Runc { get; }
    public OciSpec Spec { get; }
    public bool RootfsMounted { get; }
    public RootfsLayout Layout { get; }
    public string? UpperDir => Layout.UpperDir;
    public InitProcess Init { get; private set; } = null!;
    public CgroupInfo? Cgroup { get; private set; }
    public string RootfsPath => Path.Combine(Bundle, "rootfs");

    public ContainerRecordInfo RecordInfo => new(_shim.Namespace, Id, Bundle, RootfsPath, UpperDir, Init.Pid, Layout, Spec, Init.ExitedAt);

    /// <summary>Create: mount the rootfs, set up stdio, <c>runc create</c>, read the pid, publish TaskCreate.</summary>
    public static async Task<Container> CreateAsync(ShimContext shim, CreateTaskRequest request)
    {
        if (!string.IsNullOrEmpty(request.Checkpoint))
            throw TaskErrors.Unimplemented("restore from checkpoint");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = ParseOptions(request.Options);
        var bundle = request.Bundle;
        var layout = RootfsLayout.From(request.Rootfs);
        var settings = RuncSettings.For(bundle, shim.Namespace, options);
        new BundleState(settings.Binary, settings.Root, settings.SystemdCgroup, layout.UpperDir) { RootfsType = layout.Type }.Save(bundle);
        var runc = new RuncCommand(settings, shim.Reaper);
        var spec = OciSpec.Load(bundle);
        var container = new Container(shim, request.Id, bundle, runc, spec, request.Rootfs.Count > 0, layout);

        var rootfs = container.RootfsPath;
        if (request.Rootfs.Count > 0)
        {
            Directory.CreateDirectory(rootfs);
            try { RootfsMounter.MountAll(request.Rootfs, rootfs); }
            catch (IOException e) { throw TaskErrors.Unknown("failed to mount rootfs component: " + e.Message); }
        }

        ShimLog.Trace($"create {request.Id}: rootfs mounted after {clock.ElapsedMilliseconds} ms");
        var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
        ProcessIo? io = null;
        int pid;
        try
        {
            try { io = ProcessIo.Create(stdio, shim.Namespace, request.Id, shim.Reaper, settings.IoUid, settings.IoGid); }
            catch (Exception e) when (e is IOException or ArgumentException or TimeoutException)
            {
                throw TaskErrors.Unknown("failed to create init process I/O: " + e.Message);
            }
            var pidFile = Path.Combine(bundle, "init.pid");
            try
            {
                await runc.CreateAsync(request.Id, bundle, pidFile, io.ConsoleSocketPath, options.NoPivotRoot,
                    options.NoNewKeyring, io.RuncStdio);
            }
            catch (RuncException e)
            {
                throw TaskErrors.Unknown("OCI runtime create failed: " + e.Message);
            }
            ShimLog.Trace($"create {request.Id}: runc create done after {clock.ElapsedMilliseconds} ms");
            io.ReleaseContainerEnds();
            try { io.AttachConsole(); }
            catch (Exception e) when (e is IOException or TimeoutException)
            {
                throw TaskErrors.Unknown("failed to retrieve console master: " + e.Message);
            }
            pid = int.Parse(File.ReadAllText(pidFile).Trim());
        }
        catch
        {
            io?.Dispose();
            if (request.Rootfs.Count > 0) RootfsMounter.UnmountAll(rootfs);
            throw;
        }

        container.Init = new InitProcess(request.Id, stdio, runc, io, pid) { ExitObserved = container.OnInitExit };
        container.Cgroup = CgroupInfo.ForPid(pid);
        shim.Exits.Claim(pid, container.Init.OnExit);

        var created = new TaskCreate
        {
            ContainerId = request.Id, Bundle = bundle, Pid = (uint)pid, Checkpoint = request.Checkpoint,
            Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
        };
        created.Rootfs.AddRange(request.Rootfs);
        shim.Events.Publish(EventTopics.TaskCreate, created);
        await shim.Recorder.CreatedAsync(container.RecordInfo);
        return container;
    }

    /// <summary>The runc options in either accepted form (see <see cref="RuncOptions"/>); a bad one fails Create.</summary>
    private static RuncOptions ParseOptions(Google.Protobuf.WellKnownTypes.Any? any)
    {
        try
        {
            var options = RuncOptions.FromAny(any);
            if (any != null && any.TypeUrl.Length > 0 && !RuncOptions.IsKnownType(any))
                ShimLog.Warn($"ignoring runtime options of unknown type {any.TypeUrl}");
            return options;
        }
        catch (InvalidRuntimeOptionsException e)
        {
            throw TaskErrors.InvalidArgument(e.Message);
        }
    }

    // ---- processes ---------------------------------------------------------------------------------------

    public ContainerProcess GetProcess(string execId)
    {
        if (string.IsNullOrEmpty(execId)) return Init;
        lock (_execGate)
            return _execs.TryGetValue(execId, out var exec) ? exec : throw TaskErrors.NotFound($"process {execId} does not exist");
    }

    public ExecProcess GetExec(string execId)
    {
        lock (_execGate)
            return _execs.TryGetValue(execId, out var exec) ? exec : throw TaskErrors.NotFound($"process {execId} does not exist");
    }

    public IReadOnlyList<ExecProcess> Execs
    {
        get { lock (_execGate) return _execs.Values.ToList(); }
    }

    public async Task StartInitAsync()
    {
        await Init.StartAsync(() =>
        {
            Cgroup ??= CgroupInfo.ForPid(Init.Pid);
            if (Cgroup != null) _shim.Oom.Add(Id, Cgroup);
            _shim.Events.Publish(EventTopics.TaskStart, new TaskStart { ContainerId = Id, Pid = (uint)Init.Pid });
        });
    }

    public void AddExec(ExecProcessRequest request)
    {
        switch (Init.ReportedStatus)
        {
            case Status.Paused or Status.Pausing: throw TaskErrors.Unknown("cannot exec in a paused state");
            case Status.Stopped: throw TaskErrors.Unknown("cannot exec in a stopped state");
            case Status.Unknown: throw TaskErrors.Unknown("cannot exec in a deleted state");
        }
        if (request.Spec == null) throw TaskErrors.InvalidArgument("exec spec is required");
        var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
        lock (_execGate)
        {
            if (_execs.ContainsKey(request.ExecId)) throw TaskErrors.AlreadyExists($"id {request.ExecId}");
            _execs[request.ExecId] = new ExecProcess(request.ExecId, stdio, request.Spec.Value.ToByteArray(), () => Init.ReportedStatus);
        }
        _shim.Events.Publish(EventTopics.TaskExecAdded, new TaskExecAdded { ContainerId = Id, ExecId = request.ExecId });
    }

    public async Task<int> StartExecAsync(ExecProcess exec)
    {
        if (Init.ReportedStatus is Status.Stopped or Status.Unknown)
            throw TaskErrors.Unknown("cannot start an exec in a stopped container");
        return await exec.StartAsync(Runc, Id, Bundle, _shim.Namespace, _shim.Reaper,
            starting: () => { lock (_execGate) _activeExecs++; },
            started: pid =>
            {
                _shim.Events.Publish(EventTopics.TaskExecStarted, new TaskExecStarted { ContainerId = Id, ExecId = exec.Id, Pid = (uint)pid });
                _shim.Exits.Claim(pid, e => OnExecExit(exec, e));
            },
            failed: ExecEnded);
    }

    private void OnExecExit(ExecProcess exec, ProcessExit exit)
    {
        if (exec.OnExit(exit))
        {
            _shim.Events.Publish(EventTopics.TaskExit, new TaskExit
            {
                ContainerId = Id, Id = exec.Id, Pid = (uint)exit.Pid, ExitStatus = (uint)exit.Status,
                ExitedAt = ProtoTime.From(exit.ExitedAt),
            });
        }
        ExecEnded();
    }

    private void ExecEnded()
    {
        ProcessExit? held = null;
        lock (_execGate)
        {
            _activeExecs--;
            if (_activeExecs == 0 && _heldInitExit.HasValue)
            {
                held = _heldInitExit;
                _heldInitExit = null;
            }
        }
        if (held.HasValue) FinishInitExit(held.Value);
    }

    /// <summary>
    /// The init process exited (after TaskStart went out). Leftover processes are killed when the container
    /// shares a pid namespace; the exit is published only after every running exec's exit.
    /// </summary>
    private void OnInitExit(ProcessExit exit)
    {
        if (Spec.HasOwnPidNamespace)
        {
            HoldOrFinishInitExit(exit);
            return;
        }
        // No pid namespace of its own: the kernel does not kill the rest with init. Like the runc shim, kill them
        // all (runc kill --all, to completion) before the exit is published, so a client that sees the exit can rely
        // on them being gone. Off the reaper's thread: runc itself must be reaped meanwhile.
        _ = Task.Run(async () =>
        {
            await OrphanKiller.KillAllAsync(Runc, Id);
            HoldOrFinishInitExit(exit);
        });
    }

    private void HoldOrFinishInitExit(ProcessExit exit)
    {
        lock (_execGate)
        {
            if (_activeExecs > 0)
            {
                _heldInitExit = exit;
                return;
            }
        }
        FinishInitExit(exit);
    }

    private void FinishInitExit(ProcessExit exit)
    {
        _shim.Oom.CheckNow(Id); // an OOM kill must be reported before the exit it caused
        if (!Init.SetExited(exit)) return;
        _shim.Events.Publish(EventTopics.TaskExit, new TaskExit
        {
            ContainerId = Id, Id = Id, Pid = (uint)exit.Pid, ExitStatus = (uint)exit.Status, ExitedAt = ProtoTime.From(exit.ExitedAt),
        });
    }

    public async Task<DeleteResponse> DeleteExecAsync(string execId)
    {
        var exec = GetExec(execId);
        await exec.DeleteAsync(Bundle);
        lock (_execGate) _execs.Remove(execId);
        if (exec.Pid > 0) _shim.Exits.Release(exec.Pid);
        return exec.ToDeleteResponse();
    }

    /// <summary>Delete(init): runc delete, the recorder's window, unmount; then TaskDelete.</summary>
    public async Task<DeleteResponse> DeleteInitAsync()
    {
        await Init.DeleteAsync(
            beforeUnmount: () => _shim.Recorder.ExitedBeforeUnmountAsync(RecordInfo, Init.ExitStatus),
            unmount: () => { if (RootfsMounted) RootfsMounter.UnmountAll(RootfsPath); });
        _shim.Exits.Release(Init.Pid);
        _shim.Oom.Remove(Id);
        var response = Init.ToDeleteResponse();
        _shim.Events.Publish(EventTopics.TaskDelete, new TaskDelete
        {
            ContainerId = Id, Pid = response.Pid, ExitStatus = response.ExitStatus, ExitedAt = response.ExitedAt,
        });
        return response;
    }

    public void PublishOom() => _shim.Events.Publish(EventTopics.TaskOOM, new TaskOOM { ContainerId = Id });
    public void PublishPaused() => _shim.Events.Publish(EventTopics.TaskPaused, new TaskPaused { ContainerId = Id });
    public void PublishResumed() => _shim.Events.Publish(EventTopics.TaskResumed, new TaskResumed { ContainerId = Id });

    /// <summary>The Pids answer: every process of the container, execs tagged with ProcessDetails.</summary>
    public async Task<PidsResponse> PidsAsync()
    {
        List<int> pids;
        try { pids = await Runc.PsAsync(Id); }
        catch (RuncException e) { throw TaskErrors.Unknown("failed to list pids: " + e.Message); }
        var execByPid = new Dictionary<int, string>();
        foreach (var exec in Execs)
            if (exec.Pid > 0) execByPid[exec.Pid] = exec.Id;
        var response = new PidsResponse();
        foreach (var pid in pids)
        {
            var info = new DiffKeeper.Shim.Protos.TaskTypes.ProcessInfo { Pid = (uint)pid };
            if (execByPid.TryGetValue(pid, out var execId))
                info.Info = TypeUrls.PackBare(new ProcessDetails { ExecId = execId });
            response.Processes.Add(info);
        }
        return response;
    }
}
