using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 15-17: pause/resume, and their errors in the wrong state.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class PauseTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item15_Pause_RefusesExec_Resume_PublishesPausedResumed(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i15", runtime);
        AssertExit(await Ctr("task", "pause", id), 0);
        Assert.Equal("PAUSED", await Fx.StatusAsync(id));
        var exec = await Ctr("task", "exec", "--exec-id", "pe", id, "true");
        AssertExit(exec, 1);
        AssertContains("cannot exec in a paused state: unknown", exec.Stderr, exec);
        AssertExit(await Ctr("task", "resume", id), 0);
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));
        var paused = await Events.WaitForAsync(id, "/tasks/paused");
        var resumed = await Events.WaitForAsync(id, "/tasks/resumed");
        Assert.True(paused.Sequence < resumed.Sequence, Events.Describe(id));
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item16_SigkillWhilePaused_Stops137_ResumeSaysStopped(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i16", runtime);
        AssertExit(await Ctr("task", "pause", id), 0);
        Assert.Equal("PAUSED", await Fx.StatusAsync(id));
        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        Assert.Equal(137, exit.ExitStatus);
        var resume = await Ctr("task", "resume", id);
        AssertExit(resume, 1);
        AssertContains("cannot resume a stopped container", resume.Stderr, resume);
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item17_PauseOfStoppedTask_SaysCannotPauseStopped(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunToExitAsync("i17", runtime);
        var pause = await Ctr("task", "pause", id);
        AssertExit(pause, 1);
        AssertContains("cannot pause a stopped container: unknown", pause.Stderr, pause);
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }
}
