using System.Text.RegularExpressions;
using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 9-11, 14, 18: exec processes, their events, errors, ps and kill --all ordering.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class ExecTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item09_Exec_SeparatesStreams_ReturnsExitCode_PublishesAddedStartedExit(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i09", runtime);
        var r = await Ctr("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo out; echo err >&2; exit 7");
        AssertExit(r, 7);
        Assert.Equal("out\n", r.Stdout);
        AssertContains("err", r.Stderr, r);

        var exit = await Events.WaitForAsync(id, "/tasks/exit", e => e.Str("id") == "e1");
        var added = await Events.WaitForAsync(id, "/tasks/exec-added", e => e.Str("exec_id") == "e1");
        var started = await Events.WaitForAsync(id, "/tasks/exec-started", e => e.Str("exec_id") == "e1");
        Assert.True(added.Sequence < started.Sequence && started.Sequence < exit.Sequence, Events.Describe(id));
        Assert.True(started.Num("pid") > 0, Events.Describe(id));
        Assert.Equal(started.Num("pid"), exit.Num("pid"));
        Assert.Equal(7, exit.ExitStatus);
        // The exec's exit is not the container's: init is still running.
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));

        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item10_DuplicateRunningExecId_SaysAlreadyExists(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i10", runtime);
        AssertExit(await Ctr("task", "exec", "-d", "--exec-id", "long", id, "sleep", "100"), 0);
        await Events.WaitForAsync(id, "/tasks/exec-started", e => e.Str("exec_id") == "long");
        var dup = await Ctr("task", "exec", "--exec-id", "long", id, "true");
        AssertExit(dup, 1);
        AssertContains("id long: already exists", dup.Stderr, dup);
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item11_ExecOfMissingBinary_SaysOciRuntimeExecFailed(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i11", runtime);
        var r = await Ctr("task", "exec", "--exec-id", "m", id, "nosuchbinary");
        AssertExit(r, 1);
        AssertContains("OCI runtime exec failed", r.Stderr, r);
        AssertContains("not found in $PATH", r.Stderr, r);
        AssertContains(": unknown", r.Stderr, r);
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item14_TaskPs_ListsInitWithDashAndExecWithProcessDetails(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i14", runtime);
        AssertExit(await Ctr("task", "exec", "-d", "--exec-id", "psx", id, "sleep", "500"), 0);
        var started = await Events.WaitForAsync(id, "/tasks/exec-started", e => e.Str("exec_id") == "psx");
        var initPid = (await Fx.TasksAsync())[id].Pid;

        var ps = await Ctr("task", "ps", id);
        AssertExit(ps, 0);
        var rows = ps.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length == 2)
            .ToDictionary(f => int.Parse(f[0]), f => f[1].Trim());
        Assert.True(rows.TryGetValue(initPid, out var initInfo) && initInfo == "-", ps.ToString());
        Assert.True(rows.TryGetValue((int)started.Num("pid")!.Value, out var execInfo) && execInfo.Contains("ExecID:psx"), ps.ToString());
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item18_KillAll_PublishesExecExitBeforeInitExit(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i18", runtime);
        AssertExit(await Ctr("task", "exec", "-d", "--exec-id", "ks", id, "sleep", "500"), 0);
        await Events.WaitForAsync(id, "/tasks/exec-started", e => e.Str("exec_id") == "ks");
        AssertExit(await Ctr("task", "kill", "-a", "-s", "SIGKILL", id), 0);
        var initExit = await Events.WaitForAsync(id, "/tasks/exit", e => e.Str("id") == id);
        var execExit = await Events.WaitForAsync(id, "/tasks/exit", e => e.Str("id") == "ks");
        Assert.True(execExit.Sequence < initExit.Sequence, "exec exit must come before init exit\n" + Events.Describe(id));
        Assert.Equal(137, execExit.ExitStatus);
        Assert.Equal(137, initExit.ExitStatus);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }
}

/// <summary>Checklist items 12-13: terminals, given to ctr through `script`.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class TerminalTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    private Task<CommandResult> InTerminal(string ctrCommandLine) =>
        ExternalCommand.RunAsync("script", new[] { "-qec", ctrCommandLine, "/dev/null" }, TimeSpan.FromSeconds(30));

    private string CtrLine => $"ctr -a {Containerd.Address} -n {PrivateContainerd.Namespace}";

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item12_RunWithTty_GetsDevPts0_KeepsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i12", runtime);
        var r = await InTerminal($"{CtrLine} run --rm -t --runtime {runtime} {Image} {id} sh -c 'tty; exit 5'");
        AssertExit(r, 5);
        AssertContains("/dev/pts/0", r.Stdout, r);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item13_ExecWithTty_GetsAPts_KeepsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i13", runtime);
        var r = await InTerminal($"{CtrLine} task exec -t --exec-id tt {id} sh -c 'tty; exit 6'");
        AssertExit(r, 6);
        Assert.Matches(new Regex(@"/dev/pts/\d+"), r.Stdout);
        Assert.Equal("RUNNING", await Fx.StatusAsync(id));
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }
}
