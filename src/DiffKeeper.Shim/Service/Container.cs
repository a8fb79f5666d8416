using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Mounts;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Protos.Events;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using Google.Protobuf;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// One container the shim runs: its bundle, mounted rootfs, init process and execs, cgroup, and the event order
/// rules that span processes (<see cref="ExitHold"/>). The one layer that publishes task events and calls the
/// recorder; its answers are plain values (TaskService builds the replies).
/// </summary>
internal sealed class Container
{
    private readonly ShimContext _shim;
    private readonly object _execGate = new();
    private readonly Dictionary<string, ExecProcess> _execs = new();
    private readonly ExitHold _exitHold;

    private Container(ShimContext shim, string id, BundlePaths bundle, IRuncRunner runc, OciSpec spec, bool rootfsMounted,
        RootfsLayout layout)
    {
        _shim = shim;
        Id = id;
        Bundle = bundle;
        Runc = runc;
        Spec = spec;
        RootfsMounted = rootfsMounted;
        Layout = layout;
        // No pid namespace of its own: the kernel does not kill the rest with init (see ExitHold).
        _exitHold = new ExitHold(spec.HasOwnPidNamespace ? null : () => OrphanKiller.KillAllAsync(Runc, Id), PublishInitExit);
    }

    public string Id { get; }
    public BundlePaths Bundle { get; }
    public IRuncRunner Runc { get; }
    public OciSpec Spec { get; }
    public bool RootfsMounted { get; }
    public RootfsLayout Layout { get; }
    public InitProcess Init { get; private set; } = null!;
    public CgroupInfo? Cgroup { get; private set; }

    public ContainerRecordInfo RecordInfo =>
        new(_shim.Namespace, Id, Bundle.Directory, Bundle.Rootfs, Layout.UpperDir, Init.Pid, Layout, Spec, Init.ExitedAt);

    /// <summary>Create: mount the rootfs, set up stdio, <c>runc create</c>, read the pid, publish TaskCreate.</summary>
    public static async Task<Container> CreateAsync(ShimContext shim, CreateTaskRequest request)
    {
        if (!string.IsNullOrEmpty(request.Checkpoint))
            throw TaskErrors.Unimplemented("restore from checkpoint");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = ParseOptions(request.Options);
        var bundle = new BundlePaths(request.Bundle);
        var layout = RootfsLayout.From(request.Rootfs);
        var settings = RuncSettings.For(bundle.Directory, shim.Namespace, options);
        new BundleState(settings.Binary, settings.Root, settings.SystemdCgroup, layout.UpperDir) { RootfsType = layout.Type }.Save(bundle.Directory);
        var runc = shim.Runc(settings);
        var spec = OciSpec.Load(bundle.Directory);
        var container = new Container(shim, request.Id, bundle, runc, spec, request.Rootfs.Count > 0, layout);

        var rootfs = bundle.Rootfs;
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
            try
            {
                await runc.CreateAsync(request.Id, bundle.Directory, bundle.InitPidFile, io.ConsoleSocketPath, options.NoPivotRoot,
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
            pid = BundlePaths.ReadPid(bundle.InitPidFile) ?? throw TaskErrors.Unknown($"OCI runtime create failed: no pid in {bundle.InitPidFile}");
        }
        catch
        {
            io?.Dispose();
            if (request.Rootfs.Count > 0) RootfsMounter.UnmountAll(rootfs);
            throw;
        }

        container.Init = new InitProcess(request.Id, stdio, runc, io, pid);
        container.Cgroup = CgroupInfo.ForPid(pid);
        shim.Exits.Claim(pid, container._exitHold.InitExited);

        var created = new TaskCreate
        {
            ContainerId = request.Id, Bundle = bundle.Directory, Pid = (uint)pid, Checkpoint = request.Checkpoint,
            Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
        };
        created.Rootfs.AddRange(request.Rootfs);
        shim.Publish(EventTopics.TaskCreate, created);
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

    public ContainerProcess GetProcess(string execId) => string.IsNullOrEmpty(execId) ? Init : GetExec(execId);

    public ExecProcess GetExec(string execId)
    {
        lock (_execGate)
            return _execs.TryGetValue(execId, out var exec) ? exec : throw TaskErrors.NotFound($"process {execId} does not exist");
    }

    public IReadOnlyList<ExecProcess> Execs
    {
        get { lock (_execGate) return _execs.Values.ToList(); }
    }

    /// <summary>Start(init): <c>runc start</c>, then TaskStart; an exit meanwhile is held until it went out.</summary>
    public async Task<int> StartInitAsync()
    {
        _exitHold.StartBegins();
        try
        {
            await Init.StartAsync(() =>
            {
                Cgroup ??= CgroupInfo.ForPid(Init.Pid);
                if (Cgroup != null) _shim.Oom.Add(Id, Cgroup);
                _shim.Publish(EventTopics.TaskStart, new TaskStart { ContainerId = Id, Pid = (uint)Init.Pid });
            });
        }
        finally
        {
            _exitHold.StartEnded();
        }
        return Init.Pid;
    }

    public void AddExec(ExecProcessRequest request)
    {
        ProcessMoves.Begin(ProcessKind.Init, ProcessOperation.AddExec, Init.State);
        if (request.Spec == null) throw TaskErrors.InvalidArgument("exec spec is required");
        var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
        lock (_execGate)
        {
            if (_execs.ContainsKey(request.ExecId)) throw TaskErrors.AlreadyExists($"id {request.ExecId}");
            _execs[request.ExecId] = new ExecProcess(request.ExecId, stdio, request.Spec.Value.ToByteArray(), () => Init.State);
        }
        _shim.Publish(EventTopics.TaskExecAdded, new TaskExecAdded { ContainerId = Id, ExecId = request.ExecId });
    }

    public async Task<int> StartExecAsync(string execId)
    {
        var exec = GetExec(execId);
        ProcessMoves.Begin(ProcessKind.Init, ProcessOperation.StartExec, Init.State);
        return await exec.StartAsync(Runc, Id, Bundle, _shim.Namespace, _shim.Reaper,
            starting: _exitHold.ExecStarting,
            started: pid =>
            {
                _shim.Publish(EventTopics.TaskExecStarted, new TaskExecStarted { ContainerId = Id, ExecId = exec.Id, Pid = (uint)pid });
                _shim.Exits.Claim(pid, e => OnExecExit(exec, e));
            },
            failed: _exitHold.ExecEnded);
    }

    private void OnExecExit(ExecProcess exec, ProcessExit exit)
    {
        if (exec.OnExit(exit))
        {
            _shim.Publish(EventTopics.TaskExit, new TaskExit
            {
                ContainerId = Id, Id = exec.Id, Pid = (uint)exit.Pid, ExitStatus = (uint)exit.Status,
                ExitedAt = ProtoTime.From(exit.ExitedAt),
            });
        }
        _exitHold.ExecEnded();
    }

    /// <summary>The init's exit, released by the <see cref="ExitHold"/>: Stopped, Wait released, TaskExit.</summary>
    private void PublishInitExit(ProcessExit exit)
    {
        _shim.Oom.CheckNow(Id); // an OOM kill must be reported before the exit it caused
        if (!Init.SetExited(exit)) return;
        _shim.Publish(EventTopics.TaskExit, new TaskExit
        {
            ContainerId = Id, Id = Id, Pid = (uint)exit.Pid, ExitStatus = (uint)exit.Status, ExitedAt = ProtoTime.From(exit.ExitedAt),
        });
    }

    public async Task<ProcessSnapshot> DeleteExecAsync(string execId)
    {
        var exec = GetExec(execId);
        await exec.DeleteAsync(Bundle);
        lock (_execGate) _execs.Remove(execId);
        if (exec.Pid > 0) _shim.Exits.Release(exec.Pid);
        return exec.Snapshot();
    }

    /// <summary>Delete(init): runc delete, the recorder's window, unmount; then TaskDelete and the recorder's Deleted.</summary>
    public async Task<ProcessSnapshot> DeleteInitAsync()
    {
        await Init.DeleteAsync(
            deleting: from => { if (from == ProcessState.Created) _exitHold.Drop(); }, // runc delete kills it: no exit
            beforeUnmount: () => _shim.Recorder.ExitedBeforeUnmountAsync(RecordInfo, Init.ExitStatus),
            unmount: () => { if (RootfsMounted) RootfsMounter.UnmountAll(Bundle.Rootfs); });
        _shim.Exits.Release(Init.Pid);
        _shim.Oom.Remove(Id);
        var deleted = Init.Snapshot();
        _shim.Publish(EventTopics.TaskDelete, new TaskDelete
        {
            ContainerId = Id, Pid = (uint)deleted.Pid, ExitStatus = (uint)deleted.ExitStatus, ExitedAt = ProtoTime.From(deleted.ExitedAt),
        });
        _ = _shim.Recorder.DeletedAsync(RecordInfo);
        return deleted;
    }

    public async Task PauseAsync()
    {
        await Init.PauseAsync();
        _shim.Publish(EventTopics.TaskPaused, new TaskPaused { ContainerId = Id });
    }

    public async Task ResumeAsync()
    {
        await Init.ResumeAsync();
        _shim.Publish(EventTopics.TaskResumed, new TaskResumed { ContainerId = Id });
    }

    public void PublishOom() => _shim.Publish(EventTopics.TaskOOM, new TaskOOM { ContainerId = Id });

    /// <summary>Every process of the container, with the exec id of those that are execs.</summary>
    public async Task<List<(int Pid, string? ExecId)>> PidsAsync()
    {
        List<int> pids;
        try { pids = await Runc.PsAsync(Id); }
        catch (RuncException e) { throw TaskErrors.Unknown("failed to list pids: " + e.Message); }
        var execByPid = new Dictionary<int, string>();
        foreach (var exec in Execs)
            if (exec.Pid > 0) execByPid[exec.Pid] = exec.Id;
        return pids.Select(pid => (pid, execByPid.GetValueOrDefault(pid))).ToList();
    }
}
