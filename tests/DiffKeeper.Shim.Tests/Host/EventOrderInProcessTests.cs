using Xunit;

namespace DiffKeeper.Shim.Tests.Host;

/// <summary>
/// The event order containerd relies on and the init-exit hold (Processes/ExitHold), checked deterministically in
/// process: the exits come exactly when the test says, between the scripted runc calls, instead of depending on
/// SIGKILL timing as the real-runc suites (EventOrder/, the conformance suite) must.
/// </summary>
public class EventOrderInProcessTests
{
    private static readonly TimeSpan Bound = ScriptedShim.Bound;
    /// <summary>How long a held event is given to (wrongly) come out before the test says it was held.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Exit_during_Start_is_published_after_TaskStart()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        shim.Runc.HoldStart = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var start = shim.StartAsync();
        Assert.True(SpinWait.SpinUntil(() => shim.Runc.Calls.Contains("start c1"), Bound));

        shim.Exit(shim.Runc.InitPid, 3); // the init exits before runc start returned
        var wait = shim.WaitAsync();
        await Task.Delay(Settle);
        Assert.DoesNotContain("exit c1", shim.Events.Events);
        Assert.False(wait.IsCompleted);

        shim.Runc.HoldStart.SetResult();
        await start.WaitAsync(Bound);
        Assert.Equal(3u, (await wait.WaitAsync(Bound)).ExitStatus);
        Assert.Equal(["create", "start", "exit c1"], shim.Events.Events);
    }

    [Fact]
    public async Task Init_exit_is_held_while_an_exec_runs_and_published_after_the_exec_exit()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        await shim.StartAsync();
        await shim.AddExecAsync("e1");
        await shim.StartAsync("e1");

        shim.Exit(shim.Runc.InitPid, 137);
        var wait = shim.WaitAsync();
        await Task.Delay(Settle);
        Assert.DoesNotContain("exit c1", shim.Events.Events);
        Assert.False(wait.IsCompleted); // Wait is released with the published exit, not before

        shim.Exit(shim.Runc.ExecPids["e1"], 137);
        Assert.Equal(137u, (await wait.WaitAsync(Bound)).ExitStatus);
        Assert.Equal(["create", "start", "exec-added e1", "exec-started e1", "exit e1", "exit c1"], shim.Events.Events);
    }

    [Fact]
    public async Task Init_exit_waits_for_every_running_exec_not_only_the_first()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        await shim.StartAsync();
        foreach (var exec in new[] { "e1", "e2" })
        {
            await shim.AddExecAsync(exec);
            await shim.StartAsync(exec);
        }

        shim.Exit(shim.Runc.InitPid, 0);
        shim.Exit(shim.Runc.ExecPids["e2"], 1);
        await Task.Delay(Settle);
        Assert.DoesNotContain("exit c1", shim.Events.Events);

        shim.Exit(shim.Runc.ExecPids["e1"], 2);
        Assert.True(await shim.Events.WaitForAsync("exit c1", Bound));
        Assert.Equal(["exit e2", "exit e1", "exit c1"], shim.Events.Events[^3..]);
    }

    [Fact]
    public async Task Without_its_own_pid_namespace_kill_all_completes_before_the_init_exit_is_published()
    {
        using var shim = new ScriptedShim(ownPidNamespace: false);
        await shim.CreateAsync();
        await shim.StartAsync();
        shim.Runc.HoldKillAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        shim.Exit(shim.Runc.InitPid, 0);
        Assert.True(SpinWait.SpinUntil(() => shim.Runc.Calls.Contains("kill --all c1 9"), Bound));
        await Task.Delay(Settle);
        Assert.DoesNotContain("exit c1", shim.Events.Events);

        shim.Runc.HoldKillAll.SetResult();
        Assert.True(await shim.Events.WaitForAsync("exit c1", Bound));
        Assert.Equal(["create", "start", "exit c1"], shim.Events.Events);
    }

    [Fact]
    public async Task With_its_own_pid_namespace_nothing_is_killed_after_the_init_exit()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        await shim.StartAsync();
        shim.Exit(shim.Runc.InitPid, 0);
        Assert.True(await shim.Events.WaitForAsync("exit c1", Bound));
        Assert.DoesNotContain(shim.Runc.Calls, c => c.StartsWith("kill", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_exec_that_failed_to_start_does_not_hold_the_init_exit()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        await shim.StartAsync();
        await shim.AddExecAsync("bad");
        shim.Runc.FailExec = "bad";
        var e = await Assert.ThrowsAsync<DiffKeeper.Shim.Processes.ProcessError>(() => shim.StartAsync("bad"));
        Assert.StartsWith("OCI runtime exec failed", e.Message);

        shim.Exit(shim.Runc.InitPid, 0);
        Assert.True(await shim.Events.WaitForAsync("exit c1", Bound));
    }

    [Fact]
    public async Task Delete_of_a_created_init_publishes_no_exit()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        shim.Runc.OnDelete = () => shim.Exit(shim.Runc.InitPid, 137); // runc delete kills the created init
        await shim.DeleteAsync().WaitAsync(Bound);
        await Task.Delay(Settle);
        Assert.Equal(["create", "delete"], shim.Events.Events);
    }

    [Fact]
    public async Task The_recorder_hears_the_lifecycle_in_the_order_containerd_does()
    {
        using var shim = new ScriptedShim(ownPidNamespace: true);
        await shim.CreateAsync();
        await shim.StartAsync();
        await shim.Tasks.Pause(new() { Id = ScriptedShim.Id }, ScriptedShim.Call("Pause"));
        await shim.Tasks.Resume(new() { Id = ScriptedShim.Id }, ScriptedShim.Call("Resume"));
        await shim.AddExecAsync("e1");
        await shim.StartAsync("e1");
        shim.Exit(shim.Runc.InitPid, 0);
        shim.Exit(shim.Runc.ExecPids["e1"], 0);
        await shim.WaitAsync().WaitAsync(Bound);
        await shim.DeleteAsync("e1");
        await shim.DeleteAsync();
        Assert.True(SpinWait.SpinUntil(() => shim.Recorder.Calls.Contains("deleted"), Bound));

        Assert.Equal(["create", "start", "paused", "resumed", "exec-added e1", "exec-started e1", "exit e1", "exit c1", "delete"],
            shim.Events.Events);
        Assert.Equal(["created", "start", "exec-added e1", "exec-started e1", "exit e1", "exit", "exited 0", "delete", "deleted"],
            shim.Recorder.Calls);
    }
}
