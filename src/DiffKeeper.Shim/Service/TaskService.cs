using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// The containerd.task.v2.Task service: thin RPC handlers that find the container/process and delegate to the
/// process state machines. One shim may hold many containers (grouping).
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
            catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
            {
                // The caller went away or its deadline passed (a Wait abandoned by Ctrl-C): not a shim error.
                throw new TtrpcException(TtrpcStatusCode.Cancelled, $"{method} cancelled");
            }
            catch (Exception e)
            {
                ShimLog.Error($"{method}: {e}");
                throw TaskErrors.Unknown(e.Message);
            }
        });
    }

    private Container Get(string id)
    {
        lock (_gate)
            return _containers.TryGetValue(id, out var c) ? c : throw TaskErrors.ContainerNotCreated();
    }

    private async Task<CreateTaskResponse> Create(CreateTaskRequest r, TtrpcCallContext ctx)
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

    private async Task<StartResponse> Start(StartRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (string.IsNullOrEmpty(r.ExecId))
        {
            await c.StartInitAsync();
            return new StartResponse { Pid = (uint)c.Init.Pid };
        }
        var pid = await c.StartExecAsync(c.GetExec(r.ExecId));
        return new StartResponse { Pid = (uint)pid };
    }

    private async Task<DeleteResponse> Delete(DeleteRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (!string.IsNullOrEmpty(r.ExecId)) return await c.DeleteExecAsync(r.ExecId);
        var response = await c.DeleteInitAsync();
        lock (_gate) _containers.Remove(r.Id);
        _ = _shim.Recorder.DeletedAsync(c.RecordInfo);
        return response;
    }

    private Task<StateResponse> State(StateRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        return Task.FromResult(c.GetProcess(r.ExecId).ToStateResponse(c.Bundle));
    }

    private Task<PidsResponse> Pids(PidsRequest r, TtrpcCallContext ctx) => Get(r.Id).PidsAsync();

    private async Task<Empty> Pause(PauseRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        await c.Init.PauseAsync();
        c.PublishPaused();
        return EmptyReply;
    }

    private async Task<Empty> Resume(ResumeRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        await c.Init.ResumeAsync();
        c.PublishResumed();
        return EmptyReply;
    }

    private Task<Empty> Checkpoint(CheckpointTaskRequest r, TtrpcCallContext ctx) =>
        throw TaskErrors.Unimplemented("checkpoint");

    private async Task<Empty> Kill(KillRequest r, TtrpcCallContext ctx)
    {
        var c = Get(r.Id);
        if (string.IsNullOrEmpty(r.ExecId)) await c.Init.KillAsync((int)r.Signal, r.All);
        else c.GetExec(r.ExecId).Kill((int)r.Signal);
        return EmptyReply;
    }

    private Task<Empty> Exec(ExecProcessRequest r, TtrpcCallContext ctx)
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

    private Task<Empty> CloseIO(CloseIORequest r, TtrpcCallContext ctx)
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

    private async Task<WaitResponse> Wait(WaitRequest r, TtrpcCallContext ctx)
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
    private Task<Empty> Shutdown(ShutdownRequest r, TtrpcCallContext ctx)
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
