using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 19-20: cgroup metrics and the OOM event (this host: cgroup v1).</summary>
[Collection(ContainerdCollection.Name)]
public sealed class ResourceTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item19_Metrics_AreCgroupMetricsWithMemoryAndPids(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i19", runtime);
        var r = await Ctr("task", "metrics", id);
        AssertExit(r, 0);
        // ctr prints rows only after decoding the Any as io.containerd.cgroups.v1.Metrics (or v2.Metrics).
        var v1 = Directory.Exists("/sys/fs/cgroup/memory");
        AssertContains(v1 ? "memory.usage_in_bytes" : "memory.usage", r.Stdout, r);
        AssertContains("pids.current", r.Stdout, r);
        var usage = r.Stdout.Split('\n').Select(l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(f => f.Length >= 2 && f[0] == (v1 ? "memory.usage_in_bytes" : "memory.usage"));
        Assert.True(usage != null && long.Parse(usage[1]) > 0, "memory usage should be non-zero:\n" + r);
        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item20_OutOfMemory_Exits137_PublishesOomBeforeExit(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i20", runtime);
        var r = await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--memory-limit", "20000000", "--runtime", runtime, Image, id, "sh", "-c", "tail /dev/zero");
        AssertExit(r, 137);
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        var oom = await Events.WaitForAsync(id, "/tasks/oom", timeout: TimeSpan.FromSeconds(5));
        Assert.True(oom.Sequence < exit.Sequence, "oom must come before exit\n" + Events.Describe(id));
        await AssertNothingLeftBehindAsync(id);
    }
}
