using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using DiffKeeper.Shim.IntegrationTests.Wire;
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

    /// <summary>
    /// Item 33 to the letter: the unmount happens inside Delete(init), before its reply. Through containerd that
    /// cannot be told apart from containerd's own bundle cleanup right after, so the Delete is sent to the shim
    /// directly and the mount table read the moment the reply arrives. The emptied shim is then shut down the same
    /// way, and containerd cleans up after it as after any shim that went away.
    /// </summary>
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item33b_RootfsIsUnmountedBeforeDeleteInitReplies(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i33", runtime, "dl");
        var init = (await Fx.TasksAsync())[id].Pid;
        var shim = await Fx.ShimPidAsync(id);
        var rootfs = Path.Combine(Containerd.BundleDir(id), "rootfs");
        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        Assert.Contains(rootfs, ProcFs.MountPoints());

        var address = File.ReadAllText(Path.Combine(Containerd.BundleDir(id), "address")).Trim();
        using (var client = await RawTtrpcClient.ConnectAsync(address["unix://".Length..]))
        {
            await client.SendAsync(1, "containerd.task.v2.Task", "Delete", new ProtoWriter().String(1, id).ToArray());
            var reply = TtrpcResponse.Decode((await client.ResponseAsync(1, TimeSpan.FromSeconds(15))).Payload);
            var mountedAtReply = ProcFs.MountPoints().Contains(rootfs);
            Assert.False(reply.HasStatus, $"Delete(init) failed: {reply.StatusCode} {reply.StatusMessage}");
            Assert.False(mountedAtReply, "rootfs still mounted when Delete(init) replied");
            var fields = ProtoReader.Parse(reply.Payload);
            Assert.Equal((ulong)init, fields.First(1)?.Varint);
            Assert.Equal(137ul, fields.First(2)?.Varint);
            Assert.NotNull(fields.First(3)); // exited_at
            var deleted = await Events.WaitForAsync(id, "/tasks/delete");
            Assert.Equal(137, deleted.ExitStatus);

            // containerd still lists the task but ctr cannot load it any more (State: NotFound). Shut the now empty
            // shim down: containerd sees it go and cleans up as for a dead shim.
            await client.SendAsync(3, "containerd.task.v2.Task", "Shutdown", new ProtoWriter().String(1, id).ToArray());
            // Either an Empty reply or the connection closing counts as success (containerd treats both so).
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (ProcFs.IsAlive(shim) && DateTime.UtcNow < deadline) await Task.Delay(50);
            var shutdownReply = client.Received.FirstOrDefault(f => f.StreamId == 3);
            Assert.False(ProcFs.IsAlive(shim), "the shim holds no container after Delete(init) but did not exit on Shutdown; reply: " +
                (shutdownReply == null ? (client.Closed ? "connection closed" : "none") : Convert.ToHexString(shutdownReply.Payload)));
        }
        await Fx.WaitForStatusAsync(id, null);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
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
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
        Assert.False(ProcFs.IsAlive(shim));
    }
}
