using DiffKeeper.Shim.Protos.Events;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Protos.EventsService;
using DiffKeeper.Shim.Tests.HostilePeer;
using DiffKeeper.Ttrpc;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.Tests.EventOrder;

/// <summary>
/// The real shim and real runc driven over ttrpc as containerd would, without containerd: the events it forwards
/// to a test events service must come in the order containerd relies on.
/// </summary>
public class EventOrderTests(ITestOutputHelper output)
{
    private const string Task = RunningShim.TaskService;
    private static readonly TimeSpan CallBound = TimeSpan.FromSeconds(10);

    private static void RequireRuncAndBusybox()
    {
        Integration.RequireRoot("needs root: the shim binds its socket in /run/containerd/s");
        Integration.Require(BusyboxBundle.Available, "needs runc and busybox-static");
    }

    [SkippableFact]
    public async Task Exec_exits_come_before_the_init_exit_on_kill_all()
    {
        RequireRuncAndBusybox();
        await using var shim = await RunningShim.StartAsync(b => BusyboxBundle.Prepare(b, ["sleep", "1000"]));
        await using var client = await shim.ConnectAsync();

        var created = await Call(client, "Create", new CreateTaskRequest { Id = shim.Id, Bundle = shim.Bundle }, CreateTaskResponse.Parser, shim);
        await Call(client, "Start", new StartRequest { Id = shim.Id }, StartResponse.Parser, shim);
        string[] execs = [.. Enumerable.Range(1, 8).Select(i => $"e{i}")];
        foreach (var exec in execs)
        {
            await Call(client, "Exec", new ExecProcessRequest { Id = shim.Id, ExecId = exec, Spec = BusyboxBundle.ExecSpec("sleep", "1000") }, Empty.Parser, shim);
            await Call(client, "Start", new StartRequest { Id = shim.Id, ExecId = exec }, StartResponse.Parser, shim);
        }

        // A pending Wait must not hold up other calls on the same connection, and Shutdown must not stop a
        // shim that still holds a container.
        var pendingWait = Call(client, "Wait", new WaitRequest { Id = shim.Id }, WaitResponse.Parser, shim);
        var state = await Call(client, "State", new StateRequest { Id = shim.Id }, StateResponse.Parser, shim);
        Assert.Equal(DiffKeeper.Shim.Protos.TaskTypes.Status.Running, state.Status);
        await Call(client, "Shutdown", new ShutdownRequest { Id = shim.Id }, Empty.Parser, shim);
        await System.Threading.Tasks.Task.Delay(100);
        Assert.True(shim.IsAlive, "Shutdown stopped a shim that still runs a container");
        Assert.False(pendingWait.IsCompleted);

        await Call(client, "Kill", new KillRequest { Id = shim.Id, Signal = 9, All = true }, Empty.Parser, shim);
        var initWait = await pendingWait;
        Assert.Equal(137u, initWait.ExitStatus);
        foreach (var exec in execs)
        {
            await Call(client, "Wait", new WaitRequest { Id = shim.Id, ExecId = exec }, WaitResponse.Parser, shim);
            await Call(client, "Delete", new DeleteRequest { Id = shim.Id, ExecId = exec }, DeleteResponse.Parser, shim);
        }
        var deleted = await Call(client, "Delete", new DeleteRequest { Id = shim.Id }, DeleteResponse.Parser, shim);
        Assert.Equal(137u, deleted.ExitStatus);
        Assert.Equal(created.Pid, deleted.Pid);

        var events = WaitForInitDelete(shim);
        output.WriteLine(string.Join("\n", events.Select(Describe)));
        int Index(string topic, string? id = null) => events.FindIndex(e => e.Topic == topic && (id == null || ProcessId(e) == id));

        int create = Index("/tasks/create"), start = Index("/tasks/start"), initExit = Index("/tasks/exit", shim.Id), delete = Index("/tasks/delete");
        Assert.True(create >= 0 && create < start && start < initExit && initExit < delete, "init: create < start < exit < delete");
        foreach (var exec in execs)
        {
            int added = Index("/tasks/exec-added", exec), started = Index("/tasks/exec-started", exec), exit = Index("/tasks/exit", exec);
            Assert.True(added >= 0 && added < started && started < exit, $"{exec}: exec-added < exec-started < exit");
            Assert.True(exit < initExit, $"{exec} exit must be published before the init exit");
        }
        var exitEvent = TaskExit.Parser.ParseFrom(events[initExit].Event.Value);
        Assert.Equal(137u, exitEvent.ExitStatus);
        Assert.Equal(created.Pid, exitEvent.Pid);
    }

    [SkippableFact]
    public async Task Oom_is_published_before_the_exit_it_caused()
    {
        RequireRuncAndBusybox();
        // sh keeps the whole command substitution in memory: far beyond the 24 MiB limit.
        await using var shim = await RunningShim.StartAsync(b => BusyboxBundle.Prepare(b,
            ["sh", "-c", "a=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ${#a}"], memoryLimit: 24 << 20));
        await using var client = await shim.ConnectAsync();

        await Call(client, "Create", new CreateTaskRequest { Id = shim.Id, Bundle = shim.Bundle }, CreateTaskResponse.Parser, shim);
        await Call(client, "Start", new StartRequest { Id = shim.Id }, StartResponse.Parser, shim);
        var wait = await Call(client, "Wait", new WaitRequest { Id = shim.Id }, WaitResponse.Parser, shim, TimeSpan.FromSeconds(30));
        await Call(client, "Delete", new DeleteRequest { Id = shim.Id }, DeleteResponse.Parser, shim);

        var events = WaitForInitDelete(shim);
        output.WriteLine($"exit status {wait.ExitStatus}\n" + string.Join("\n", events.Select(Describe)));
        Assert.Equal(137u, wait.ExitStatus);
        int oom = events.FindIndex(e => e.Topic == "/tasks/oom");
        int exit = events.FindIndex(e => e.Topic == "/tasks/exit");
        Assert.True(oom >= 0, "no /tasks/oom for an OOM-killed init");
        Assert.True(oom < exit, "/tasks/oom must come before the /tasks/exit it caused");
    }

    [SkippableFact]
    public async Task Wedged_events_service_does_not_slow_the_task_api_or_block_exit()
    {
        RequireRuncAndBusybox();
        await using var shim = await RunningShim.StartAsync(b => BusyboxBundle.Prepare(b, ["sleep", "1000"]));
        shim.Events.HangForwards();
        await using var client = await shim.ConnectAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var bound = TimeSpan.FromSeconds(3); // each call well under containerd's own deadlines

        await Call(client, "Create", new CreateTaskRequest { Id = shim.Id, Bundle = shim.Bundle }, CreateTaskResponse.Parser, shim, bound);
        await Call(client, "Start", new StartRequest { Id = shim.Id }, StartResponse.Parser, shim, bound);
        await Call(client, "Kill", new KillRequest { Id = shim.Id, Signal = 9 }, Empty.Parser, shim, bound);
        await Call(client, "Wait", new WaitRequest { Id = shim.Id }, WaitResponse.Parser, shim, bound);
        await Call(client, "Delete", new DeleteRequest { Id = shim.Id }, DeleteResponse.Parser, shim, bound);
        var lifecycle = clock.Elapsed;
        try
        {
            await client.CallAsync(Task, "Shutdown", new ShutdownRequest { Id = shim.Id }, Empty.Parser, timeout: bound);
        }
        catch (TtrpcException e) when (e.Code == TtrpcStatusCode.Unavailable) { }
        Assert.True(await shim.WaitForExitAsync(TimeSpan.FromSeconds(6)), "the shim did not exit: stuck flushing events to a wedged containerd");
        output.WriteLine($"lifecycle {lifecycle.TotalMilliseconds:F0} ms, exit after {clock.Elapsed.TotalMilliseconds:F0} ms in all");
    }

    private static async Task<TResp> Call<TReq, TResp>(TtrpcClient client, string method, TReq request,
        Google.Protobuf.MessageParser<TResp> parser, RunningShim shim, TimeSpan? bound = null)
        where TReq : Google.Protobuf.IMessage<TReq> where TResp : Google.Protobuf.IMessage<TResp>
    {
        try
        {
            return await client.CallAsync(Task, method, request, parser, timeout: bound ?? CallBound);
        }
        catch (TtrpcException e)
        {
            throw new Xunit.Sdk.XunitException($"{method} failed: {e.Code} {e.Message}\nshim log:\n{shim.Log}");
        }
    }

    private static List<Envelope> WaitForInitDelete(RunningShim shim)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var events = shim.Events.Envelopes.ToList();
            if (events.Any(e => e.Topic == "/tasks/delete")) return events;
            Thread.Sleep(20);
        }
        return shim.Events.Envelopes.ToList();
    }

    private static string? ProcessId(Envelope e) => e.Topic switch
    {
        "/tasks/exit" => TaskExit.Parser.ParseFrom(e.Event.Value).Id,
        "/tasks/exec-added" => TaskExecAdded.Parser.ParseFrom(e.Event.Value).ExecId,
        "/tasks/exec-started" => TaskExecStarted.Parser.ParseFrom(e.Event.Value).ExecId,
        _ => null,
    };

    private static string Describe(Envelope e) => $"{e.Topic} {ProcessId(e)}";
}
