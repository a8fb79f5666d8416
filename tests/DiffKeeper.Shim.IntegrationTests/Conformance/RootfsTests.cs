using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 33-34: the rootfs mount's lifetime (the recorder's window) and a clean teardown.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class RootfsTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item33_RootfsMountedWhileRunningAndAfterExit_GoneAfterDelete_SnapshotRemovedAfterTaskDelete(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i33", runtime);
        var rootfs = Path.Combine(Containerd.BundleDir(id), "rootfs");
        Assert.Contains(rootfs, ProcFs.MountPoints());

        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        // Between the init exit and Delete(init) the upper dir must still be mounted: the recorder's window.
        Assert.Contains(rootfs, ProcFs.MountPoints());
        AssertExit(await Ctr("task", "rm", id), 0);
        Assert.DoesNotContain(rootfs, ProcFs.MountPoints());
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);

        var rm = NewId("i33", runtime, "rm");
        AssertExit(await Ctr("run", "--rm", "--runtime", runtime, Image, rm, "sh", "-c", "echo x > /tmp/f"), 0);
        var taskDelete = await Events.WaitForAsync(rm, "/tasks/delete");
        var snapshotRemove = await Events.WaitForAsync(rm, "/snapshot/remove");
        Assert.True(taskDelete.Sequence < snapshotRemove.Sequence, Events.Describe(rm));
        await AssertNothingLeftBehindAsync(rm);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item34_AfterTeardown_NoSocketRuncStateBundleMountOrShimLeft(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i34", runtime);
        AssertExit(await Ctr("task", "exec", "-d", "--exec-id", "x", id, "sleep", "300"), 0);
        var socket = Containerd.ShimSocketPath(id);
        Assert.True(File.Exists(socket), "shim socket missing while running: " + socket);
        Assert.True(Directory.Exists(PrivateContainerd.RuncStateDir(id)));
        var shim = await Fx.ShimPidAsync(id);

        AssertExit(await Ctr("task", "kill", "-a", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        AssertExit(await Ctr("task", "rm", id), 0);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
        Assert.False(ProcFs.IsAlive(shim));
    }
}
