using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 21-24: log URIs, null IO, held-open stdin, attach.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class IoTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item21_FileLogUri_GetsBothStreams(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i21", runtime);
        var log = Path.Combine(Fx.Root, id + ".out");
        // The pause before exit is deliberate: the stock runc shim itself loses the stderr line about 1 run in 10
        // when the process exits at once (its copy is cut at exit). This item checks routing, not that race.
        var r = await Ctr("run", "--rm", "--log-uri", "file://" + log, "--runtime", runtime, Image, id, "sh", "-c", "echo out21; echo err21 >&2; sleep 0.2");
        AssertExit(r, 0);
        Assert.DoesNotContain("out21", r.Stdout);
        var content = File.Exists(log) ? File.ReadAllText(log) : "<no file>";
        AssertContains("out21", content);
        AssertContains("err21", content);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item22_NullIo_PrintsNothing_KeepsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i22", runtime);
        var r = await Ctr("run", "--rm", "--null-io", "--runtime", runtime, Image, id, "sh", "-c", "echo hi22; echo e22 >&2; exit 2");
        AssertExit(r, 2);
        Assert.DoesNotContain("hi22", r.Output);
        Assert.DoesNotContain("e22", r.Output);
        await AssertNothingLeftBehindAsync(id);
    }

    // Item 23 as the contract words it ("echo x | ctr run … cat keeps running") is a race even with the stock
    // shim: ctr sends CloseIO at stdin EOF, and the reference ignores a CloseIO that arrives before Start but
    // honours one after it. So it is pinned as two deterministic halves:
    //  a) the shim holds stdin open by itself: `ctr run -d … cat` keeps running after ctr (and its FIFO ends) left;
    //  b) stdin reaches the container, and an EOF after start (CloseIO) ends it: cat echoes x and exits 0.
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item23a_StdinIsHeldOpenByTheShim_CatSurvivesTheClientLeaving(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i23", runtime, "d");
        AssertExit(await Ctr("run", "-d", "--runtime", runtime, Image, id, "cat"), 0);
        await Task.Delay(1500);
        Assert.True(await Fx.StatusAsync(id) == "RUNNING", "cat saw EOF once ctr had gone: the shim must keep stdin open until CloseIO\n" + Events.Describe(id));
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item23b_StdinReachesTheContainer_EofAfterStartClosesIt(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i23", runtime);
        using var ctr = new BackgroundProcess("ctr", Containerd.CtrArgs("run", "--rm", "--runtime", runtime, Image, id, "cat"), redirectStdin: true);
        await Fx.WaitForStatusAsync(id, "RUNNING");
        await ctr.StandardInput.WriteAsync("x\n");
        await ctr.StandardInput.FlushAsync();
        Assert.True(await ctr.WaitForOutputAsync(l => l == "x", TimeSpan.FromSeconds(10)), "cat did not echo x\n" + ctr);
        await Task.Delay(500);
        Assert.False(ctr.HasExited, "cat exited while stdin was still open\n" + ctr);
        ctr.StandardInput.Close();
        Assert.True(await ctr.WaitForExitAsync(TimeSpan.FromSeconds(10)), "EOF on stdin (CloseIO) did not reach cat\n" + ctr);
        Assert.True(ctr.ExitCode == 0, $"exit {ctr.ExitCode}\n{ctr}");
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item24_Attach_StreamsTicksAndReturnsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i24", runtime);
        AssertExit(await Ctr("run", "-d", "--runtime", runtime, Image, id, "sh", "-c",
            "i=0; while [ $i -lt 15 ]; do echo tick$i; i=$((i+1)); sleep 0.2; done; exit 4"), 0);
        var attach = await Ctr(TimeSpan.FromSeconds(20), "task", "attach", id);
        AssertExit(attach, 4);
        AssertContains("tick14", attach.Stdout, attach);
        // `ctr task attach` deletes the task itself once it has the exit status.
        await Events.WaitForAsync(id, "/tasks/delete");
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }
}
