using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>A containerd of its own for item 28, which restarts it: the other tests never see the restart.</summary>
public sealed class RestartableContainerdFixture : ContainerdFixture;

[CollectionDefinition(Name)]
public sealed class RestartableContainerdCollection : ICollectionFixture<RestartableContainerdFixture>
{
    public const string Name = "private containerd that gets restarted";
}

/// <summary>Checklist item 28: the shim outlives a containerd restart and keeps serving the task.</summary>
[Collection(RestartableContainerdCollection.Name)]
public sealed class DaemonRestartTests(RestartableContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item28_ContainerdRestart_ShimSurvives_TaskStillRunning_LaterExitEventArrives(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i28", runtime);
        var shim = await Fx.ShimPidAsync(id);
        var init = (await Fx.TasksAsync())[id].Pid;

        await Containerd.StopAsync();
        await Task.Delay(500);
        Assert.True(ProcFs.IsAlive(shim), "the shim died with containerd");
        Assert.True(ProcFs.IsAlive(init), "the container died with containerd");
        await Containerd.StartAsync();
        await Fx.StartEventLogAsync();

        var tasks = await Fx.TasksAsync();
        Assert.True(tasks.TryGetValue(id, out var t) && t.Status == "RUNNING" && t.Pid == init, $"after restart: {string.Join(", ", tasks)}");
        Assert.Equal(shim, await Fx.ShimPidAsync(id));

        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        Assert.Equal(137, exit.ExitStatus);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }
}
