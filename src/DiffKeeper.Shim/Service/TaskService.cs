using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Protos.Runc;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// The containerd.task.v2.Task service: thin RPC handlers that find the container/process, delegate to it, and
/// map its plain answers to protobuf replies and its <see cref="ProcessError"/>s to ttrpc errors (the only place
/// that knows the wire). One shim may hold many containers (grouping).
/// </summary>
internal sealed class TaskService
{
    public const string ServiceName = "containerd.task.v2.Task";
    private static readonly Empty EmptyReply = new();

    private readonly ShimContext _shim;
    private readonly object _gate = new();
    private readonly Dictionary<string, Container> _containers = new();
    private int _creating;
    private readonly TaskCompletionSource _shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskService(ShimContext shim) => _shim = shim;

    /// <summary>Completes when Shutdown found no container left: the shim should exit.</summary>
    public Task ShutdownRequested => _shutdown.Task;

    public void Register(TtrpcServer server)
    {
        Add(server, "State", StateRequest.Parser, State);
        Add(server, "Create", CreateTaskRequest.Parser, Create);
        Add(server, "Start", StartRequest.Parser, Start);
        Add(server, "Delete", DeleteRequest.Parser, Delete);
        Add(server, "Pids", PidsRequest.Parser, Pids);
        Add(server, "Pause", PauseRequest.Parser, Pause);
        Add(server, "Resume", ResumeRequest.Parser, Resume);
        Add(server, "Checkpoint", CheckpointTaskRequest.Parser, Checkpoint);
        Add(server, "Kill", KillRequest.Parser, Kill);
        Add(server, "Exec", ExecProcessRequest.Parser, Exec);
        Add(server, "ResizePty", ResizePtyRequest.Parser, ResizePty);
        Add(server, "CloseIO", CloseIORequest.Parser, CloseIO);
        Add(server, "Update", UpdateTaskRequest.Parser, Update);
        Add(server, "Wait", WaitRequest.Parser, Wait);
        Add(server, "Stats", StatsRequest.Parser, Stats);
        Add(server, "Connect", ConnectRequest.Parser, Connect);
        Add(server, "Shutdown", ShutdownRequest.Parser, Shutdown);
    }

    private static void Add<TReq, TResp>(TtrpcServer server, string method, MessageParser<TReq> parser,
        Func<TReq, TtrpcCallContext, Task<TResp>> handler)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp>
    {
        server.Register<TReq, TResp>(ServiceName, method, parser, async (request, context) =>
        {
            ShimLog.Trace($"rpc {method} {request}");
            try
            {
                return await handler(request, context);
            }
            catch (TtrpcException)
            {
                throw;
            }
            catch (ProcessError e)
            {
                throw ToTtrpc(e);
            }
            catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
            {
                // The caller went away or its deadline passed (a Wait abandoned by Ctrl-C): not a shim error.
                throw new TtrpcException(TtrpcStatusCode.Cancelled, $"{method} cancelled");
            }
            catch (Exception e)
            {
                ShimLog.Error($"{method}: {e}");
                throw new TtrpcException(TtrpcStatusCode.Unknown, e.Message);
            }
        });
    }

    /// <summary>
    /// A ttrpc error the way containerd's errdefs.ToGRPC produces it: the status code plus the error class appended
    /// to the message (containerd's client strips and re-adds it, so `ctr` prints e.g.
    /// "process already finished: not found"). Unknown is a plain error (Go's errors.New): the message as is.
    /// </summary>
    internal static TtrpcException ToTtrpc(ProcessError e) => e.Kind switch
    {
        ErrorKind.NotFound => new(TtrpcStatusCode.NotFound, e.Message + ": not found"),
        ErrorKind.AlreadyExists => new(TtrpcStatusCode.AlreadyExists, e.Message + ": already exists"),
        ErrorKind.FailedPrecondition => new(TtrpcStatusCode.FailedPrecondition, e.Message + ": failed precondition"),
        ErrorKind.InvalidArgument => new(TtrpcStatusCode.InvalidArgument, e.Message + ": invalid argument"),
        ErrorKind.Unimplemented => new(TtrpcStatusCode.Unimplemented, e.Message + ": not implemented"),
        _ => new(TtrpcStatusCode.Unknown, e.Message),
    };

    internal static Protos.TaskTypes.Status ToStatus(ProcessState state) => state switch
    {
        ProcessState.Created => Protos.TaskTypes.Status.Created,
        ProcessState.Running => Protos.TaskTypes.Status.Running,
        ProcessState.Pausing => Protos.TaskTypes.Status.Pausing,
        ProcessState.Paused => Protos.TaskTypes.Status.Paused,
        ProcessState.Stopped => Protos.TaskTypes.Status.Stopped,
        _ => Protos.TaskTypes.Status.Unknown,
    };

    private static DeleteResponse ToDeleteResponse(ProcessSnapshot p) => new()
    {
        Pid = (uint)p.Pid, ExitStatus = (uint)p.ExitStatus, ExitedAt = ProtoTime.From(p.ExitedAt),
    };

    private Container Get(string id)
    {
        lock (_gate)
            return _containers.TryGetValue(id, out var c) ? c : throw TaskErrors.ContainerNotCreated();
    }

    internal async Task<CreateTaskResponse> Create(CreateTaskRequest r, TtrpcCallContext ctx)
    {
        lock (_gate)
        {
            if (_containers.ContainsKey(r.Id)) throw TaskErrors.AlreadyExists($"container {r.Id}");
            _creating++;
        }
        try
        {
            var container = await Container.CreateAsync(_shim, r);
            lock (_gate) _containers[r.Id] = container;
            return new CreateTaskResponse { Pid = (uint)container.Init.Pid };
        }
        finally
        {
            lock (_gate) _creating--;
        }
    }

    internal async Task<StartResponse> Start(StartRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        var pid = string.IsNullOrEmpty(r.ExecId) ? await c.StartInitAsync() : await c.StartExecAsync(r.ExecId);
        return new StartResponse { Pid = (uint)pid };
    }

    internal async Task<DeleteResponse> Delete(DeleteRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (!string.IsNullOrEmpty(r.ExecId)) return ToDeleteResponse(await c.DeleteExecAsync(r.ExecId));
        var deleted = await c.DeleteInitAsync();
        lock (_gate) _containers.Remove(r.Id);
        return ToDeleteResponse(deleted);
    }

    internal Task<StateResponse> State(StateRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        var p = c.GetProcess(r.ExecId).Snapshot();
        return Task.FromResult(new StateResponse
        {
            Id = p.Id, Bundle = c.Bundle.Directory, Pid = (uint)p.Pid, Status = ToStatus(p.State),
            Stdin = p.Stdio.Stdin, Stdout = p.Stdio.Stdout, Stderr = p.Stdio.Stderr, Terminal = p.Stdio.Terminal,
            ExitStatus = (uint)p.ExitStatus, ExitedAt = ProtoTime.From(p.ExitedAt),
        });
    }

    private async Task<PidsResponse> Pids(PidsRequest r, TtrpcCallContext ctx)
    {
        var response = new PidsResponse();
        foreach (var (pid, execId) in await Get(r.Id).PidsAsync())
        {
            var info = new Protos.TaskTypes.ProcessInfo { Pid = (uint)pid };
            if (execId != null) info.Info = TypeUrls.PackBare(new ProcessDetails { ExecId = execId });
            response.Processes.Add(info);
        }
        return response;
    }

    internal async Task<Empty> Pause(PauseRequest r, TtrpcCallContext ctx)
    {
        await Get(r.Id).PauseAsync();
        return EmptyReply;
    }

    internal async Task<Empty> Resume(ResumeRequest r, TtrpcCallContext ctx)
    {
        await Get(r.Id).ResumeAsync();
        return EmptyReply;
    }

    private Task<Empty> Checkpoint(CheckpointTaskRequest r, TtrpcCallContext ctx) =>
        throw TaskErrors.Unimplemented("checkpoint");

    internal async Task<Empty> Kill(KillRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (string.IsNullOrEmpty(r.ExecId)) await c.Init.KillAsync((int)r.Signal, r.All);
        else c.GetExec(r.ExecId).Kill((int)r.Signal);
        return EmptyReply;
    }

    internal Task<Empty> Exec(ExecProcessRequest r, TtrpcCallContext ctx)
    {
        Get(r.Id).AddExec(r);
        return Task.FromResult(EmptyReply);
    }

    private Task<Empty> ResizePty(ResizePtyRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (string.IsNullOrEmpty(r.ExecId)) c.Init.Resize(r.Width, r.Height);
        else c.GetExec(r.ExecId).Resize(r.Width, r.Height);
        return Task.FromResult(EmptyReply);
    }

    internal Task<Empty> CloseIO(CloseIORequest r, TtrpcCallContext ctx)
    {
        var p = Get(r.Id).GetProcess(r.ExecId);
        if (r.Stdin) p.CloseStdin();
        return Task.FromResult(EmptyReply);
    }

    private async Task<Empty> Update(UpdateTaskRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (r.Resources == null) throw TaskErrors.InvalidArgument("resources are required");
        await c.Init.UpdateAsync(r.Resources.Value.ToByteArray());
        return EmptyReply;
    }

    internal async Task<WaitResponse> Wait(WaitRequest r, TtrpcCallContext ctx)
    {
        var p = Get(r.Id).GetProcess(r.ExecId);
        await p.Exited.WaitAsync(ctx.CancellationToken);
        return new WaitResponse { ExitStatus = (uint)p.ExitStatus, ExitedAt = ProtoTime.From(p.ExitedAt) };
    }

    private Task<StatsResponse> Stats(StatsRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        var cgroup = c.Cgroup;
        if (cgroup == null || !cgroup.Exists) throw TaskErrors.NotFound("cgroup does not exist");
        return Task.FromResult(new StatsResponse { Stats = StatsCollector.Collect(cgroup) });
    }

    private Task<ConnectResponse> Connect(ConnectRequest r, TtrpcCallContext ctx)
    {
        Container? c;
        lock (_gate) _containers.TryGetValue(r.Id, out c);
        return Task.FromResult(new ConnectResponse { ShimPid = (uint)Environment.ProcessId, TaskPid = (uint)(c?.Init.Pid ?? 0) });
    }

    /// <summary>
    /// Exits the shim when it holds no container. Deliberately ignores <c>ctx.CancellationToken</c>: the effect must
    /// not depend on the reply being deliverable (a client may send Shutdown and close at once; runc's shim exits).
    /// </summary>
    internal Task<Empty> Shutdown(ShutdownRequest r, TtrpcCallContext ctx)
    {
        lock (_gate)
        {
            if (_containers.Count > 0 || _creating > 0) return Task.FromResult(EmptyReply);
        }
        _shutdown.TrySetResult();
        return Task.FromResult(EmptyReply);
    }

    /// <summary>OOM notifications from the watcher thread.</summary>
    public void OnOom(string containerId)
    {
        Container? c;
        lock (_gate) _containers.TryGetValue(containerId, out c);
        c?.PublishOom();
    }
}
