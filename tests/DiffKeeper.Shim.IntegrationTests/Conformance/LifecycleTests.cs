using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 1-8: resolution, start invocation, run/kill/rm lifecycle and its errors.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class LifecycleTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item01_UnknownRuntimeSaysBinaryNotInstalled_RuntimeUnderTestResolves(string runtime)
    {
        Fx.Require(runtime);
        var missing = NewId("i01", runtime, "x");
        var r = await Ctr("run", "--rm", "--runtime", "io.containerd.nosuch.v1", Image, missing, "true");
        AssertExit(r, 1);
        AssertContains("binary not installed \"containerd-shim-nosuch-v1\"", r.Stderr, r);

        var id = NewId("i01", runtime);
        AssertExit(await Ctr("run", "--rm", "--runtime", runtime, Image, id, "true"), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item02_StartGetsContainerdArgvAndEnv_PrintsOnlyTheAddress_WritesAddressFile(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i02", runtime);
        var starts = Fx.Shims.CallsFor(id).Where(c => c.Action == "start").ToList();
        var start = Assert.Single(starts);

        var containerdExe = start.Flag("-publish-binary");
        Assert.Equal(new[] { "-namespace", PrivateContainerd.Namespace, "-address", Containerd.Address, "-publish-binary", containerdExe, "-id", id, "start" },
            start.Args.Where(a => a != "-debug").ToArray());
        Assert.True(containerdExe != null && File.Exists(containerdExe) && Path.GetFileName(containerdExe) == "containerd", $"-publish-binary {containerdExe}");
        Assert.Equal(Containerd.TtrpcAddress, start.Env.GetValueOrDefault("TTRPC_ADDRESS"));
        Assert.Equal(Containerd.BundleDir(id), start.Cwd);

        var expectedAddress = "unix://" + Containerd.ShimSocketPath(id);
        Assert.Equal(0, start.ExitCode);
        // containerd reads stdout+stderr combined: anything but the bare address (a log line, a newline) is a bug.
        Assert.Equal(expectedAddress, start.Stdout);
        Assert.Equal(expectedAddress, File.ReadAllText(Path.Combine(Containerd.BundleDir(id), "address")));

        // The server must not hold the start process's output: containerd waits for EOF on it.
        var shim = await Fx.ShimPidAsync(id);
        // The process serving the task is the binary under test (not, say, a stock shim it delegates to).
        Assert.Equal(Path.GetFullPath(Fx.Shims.RealBinary(runtime)!), new FileInfo($"/proc/{shim}/exe").LinkTarget);
        var startOutput = start.LogFile[..^".call".Length] + ".out";
        foreach (var fd in new[] { 0, 1, 2 })
            Assert.NotEqual(startOutput, ProcFs.FdTarget(shim, fd));

        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item03_RunRm_PrintsOutput_ReturnsExitCode_PublishesCreateStartExitDelete(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i03", runtime);
        var r = await Ctr("run", "--rm", "--runtime", runtime, Image, id, "sh", "-c", "echo hello; exit 3");
        AssertExit(r, 3);
        Assert.Equal("hello\n", r.Stdout);

        var delete = await Events.WaitForAsync(id, "/tasks/delete");
        var events = Events.TaskEventsFor(id);
        Assert.True(events.Select(e => e.Topic).SequenceEqual(new[] { "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete" }), Events.Describe(id));
        var pid = events[0].Num("pid");
        Assert.True(pid > 0, Events.Describe(id));
        Assert.Equal(pid, events[1].Num("pid"));
        Assert.Equal(pid, events[2].Num("pid"));
        Assert.Equal(id, events[2].Str("id"));
        Assert.Equal(3, events[2].ExitStatus);
        Assert.Equal(3, delete.ExitStatus);
        Assert.Equal(pid, delete.Num("pid"));
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item04_Sigkill_StopsWith137_RmWarnsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i04", runtime);
        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        Assert.Equal(137, exit.ExitStatus);
        var rm = await Ctr("task", "rm", id);
        AssertExit(rm, 0);
        AssertContains("exit code 137", rm.Output, rm);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item05_DefaultSigtermToPid1Sleep_IsAcceptedAndTaskKeepsRunning(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i05", runtime);
        AssertExit(await Ctr("task", "kill", id), 0);
        await Task.Delay(1000);
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));
        Assert.DoesNotContain(Events.TaskEventsFor(id), e => e.Topic == "/tasks/exit");
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item06_KillAfterExit_SaysProcessAlreadyFinished(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunToExitAsync("i06", runtime);
        var kill = await Ctr("task", "kill", id);
        AssertExit(kill, 1);
        AssertContains("process already finished: not found", kill.Stderr, kill);
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item07_RmOfRunningTaskIsRefused_RmForceKillsAndDeletes(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i07", runtime);
        var rm = await Ctr("task", "rm", id);
        Assert.NotEqual(0, rm.ExitCode);
        AssertContains("running: failed precondition", rm.Stderr, rm);
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));

        AssertExit(await Ctr("task", "rm", "-f", id), 0);
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        Assert.Equal(137, exit.ExitStatus);
        await Events.WaitForAsync(id, "/tasks/delete");
        Assert.Null(await Fx.StatusAsync(id));
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item08_SecondRm_SaysNoRunningTaskNotFound(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunToExitAsync("i08", runtime);
        AssertExit(await Ctr("task", "rm", id), 0);
        var again = await Ctr("task", "rm", id);
        AssertExit(again, 1);
        AssertContains("no running task found", again.Stderr, again);
        AssertContains("not found", again.Stderr, again);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }
}
