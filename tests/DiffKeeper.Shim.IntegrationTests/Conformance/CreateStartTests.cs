using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 25-27: create then start, a failing create, parallel runs.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class CreateStartTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item25_ContainerCreateThenTaskStart_PrintsAndReturnsExitCode(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i25", runtime);
        AssertExit(await Ctr("container", "create", "--runtime", runtime, Image, id, "--", "sh", "-c", "echo started; exit 9"), 0);
        var start = await Ctr("task", "start", id);
        AssertExit(start, 9);
        Assert.Equal("started\n", start.Stdout);
        await Events.WaitForAsync(id, "/tasks/delete");
        Assert.True(Events.TaskEventsFor(id).Select(e => e.Topic).SequenceEqual(new[] { "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete" }), Events.Describe(id));
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item26_MissingEntrypoint_OciRuntimeCreateFailed_NothingLeftBehind(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i26", runtime);
        var r = await Ctr("run", "--rm", "--runtime", runtime, Image, id, "/nonexistent");
        AssertExit(r, 1);
        AssertContains("OCI runtime create failed", r.Stderr, r);
        Assert.Null(await Fx.StatusAsync(id));
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item27_FiveParallelRuns_EachReturnsItsOwnExitCode(string runtime)
    {
        Fx.Require(runtime);
        var ids = Enumerable.Range(1, 5).Select(i => NewId("i27", runtime, i.ToString())).ToArray();
        // The pause before exit keeps a race that is not the shim's out of this test: a container that exits at once,
        // five at a time on two cores, sometimes leaves `ctr run` with an empty stdout and the right exit code, with
        // the stock runc shim as with ours (session 10, 5 parallel runs x 30 rounds beside 3 busy loops: runc-v2 lost
        // 3 of 150 outputs, ours 0 there and 1 in a CI run; with 0.5 s between the echo and the exit, 0 of 150 each).
        // ctr opens its end of the FIFO asynchronously and stops waiting for output once the task has exited; the
        // likely cause is that open not being done by then (not traced further). The exit codes never went wrong.
        var runs = await Task.WhenAll(ids.Select((id, i) =>
            Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--runtime", runtime, Image, id, "sh", "-c", $"echo run{i + 1}; sleep 0.5; exit {i + 1}")));
        for (var i = 0; i < runs.Length; i++)
        {
            AssertExit(runs[i], i + 1);
            Assert.Equal($"run{i + 1}\n", runs[i].Stdout);
        }
        foreach (var id in ids) await AssertNothingLeftBehindAsync(id);
    }
}
