using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using DiffKeeper.Shim.IntegrationTests.Wire;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>Checklist items 29-31: a killed shim, grouped containers sharing a shim, concurrent `start`.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class ShimProcessTests(ContainerdFixture fixture, ITestOutputHelper output) : ChecklistTest(fixture)
{
    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item29_KilledShim_ContainerdRunsDelete_PublishesExitAndDelete_CleansUp(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i29", runtime);
        var init = (await Fx.TasksAsync())[id].Pid;
        var shim = await Fx.ShimPidAsync(id);
        Assert.Equal(0, Libc.Kill(shim, Libc.SIGKILL));

        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        Assert.Equal(137, exit.ExitStatus);
        await Events.WaitForAsync(id, "/tasks/delete");
        Assert.Contains(Fx.Shims.CallsFor(id), c => c.Action == "delete");
        await Fx.WaitForStatusAsync(id, null);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (ProcFs.IsAlive(init) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.False(ProcFs.IsAlive(init), $"container init {init} survived its shim");

        var containers = await Ctr("container", "ls", "-q");
        Assert.Contains(id, containers.Stdout.Split('\n').Select(l => l.Trim()));
        AssertExit(await Ctr("container", "rm", id), 0);
        output.WriteLine($"{runtime}: shim socket file after SIGKILL: {(File.Exists(Containerd.ShimSocketPath(id)) ? "left behind" : "removed")}");
        // The stock runc shim leaves its socket file behind on this path; everything else must be gone.
        await AssertNothingLeftBehindAsync(id, allowSocketFile: true);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item30_GroupedContainers_ShareOneShim_RmDeletesOnlyItsOwn_ShimExitsAfterLast(string runtime)
    {
        Fx.Require(runtime);
        var group = $"g30-{ShimRuntimes.Tag(runtime)}-{Fx.RunToken}";
        var annotation = "io.kubernetes.cri.sandbox-id=" + group;
        var first = await RunSleeperAsync("i30", runtime, "a", "--annotation", annotation);
        var second = await RunSleeperAsync("i30", runtime, "b", "--annotation", annotation);

        var shim = await Fx.ShimPidAsync(first);
        Assert.Equal(shim, await Fx.ShimPidAsync(second));
        var expectedAddress = "unix://" + Containerd.ShimSocketPath(group);
        Assert.Equal(expectedAddress, File.ReadAllText(Path.Combine(Containerd.BundleDir(first), "address")));
        Assert.Equal(expectedAddress, File.ReadAllText(Path.Combine(Containerd.BundleDir(second), "address")));

        await KillAndRemoveAsync(first);
        await Events.WaitForAsync(first, "/tasks/delete");
        await Task.Delay(500);
        Assert.True(ProcFs.IsAlive(shim), "the shared shim exited while the second container still runs");
        Assert.Equal("RUNNING", await Fx.StatusAsync(second));
        var deletes = Fx.Shims.Calls().Where(c => c.Action == "delete").Select(c => c.Id).ToList();
        Assert.Contains(first, deletes);
        Assert.DoesNotContain(second, deletes);
        Assert.Empty(ProcFs.MountPointsUnder(Containerd.BundleDir(first)));
        Assert.NotEmpty(ProcFs.MountPointsUnder(Containerd.BundleDir(second)));

        await KillAndRemoveAsync(second);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcFs.IsAlive(shim) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.False(ProcFs.IsAlive(shim), "the shared shim kept running after its last container was removed");
        await AssertNothingLeftBehindAsync(first, group);
        await AssertNothingLeftBehindAsync(second, group);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item31_TwoConcurrentStarts_SameAddress_ExactlyOneServer(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i31", runtime);
        // A hand-made bundle, as containerd prepares it before `start`: config.json, rootfs/, and the log FIFO,
        // which we hold open for reading the way containerd does.
        var bundle = Path.Combine(Fx.Root, "b31-" + ShimRuntimes.Tag(runtime));
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        File.WriteAllText(Path.Combine(bundle, "config.json"),
            """{"ociVersion":"1.0.2-dev","process":{"args":["true"],"cwd":"/"},"root":{"path":"rootfs"},"annotations":{}}""");
        var logFifo = Path.Combine(bundle, "log");
        Libc.MkFifo(logFifo, 0b110_000_000);
        var logFd = Libc.Open(logFifo, Libc.O_RDWR | Libc.O_CLOEXEC);
        Assert.True(logFd >= 0, "open log fifo");
        var socket = Containerd.ShimSocketPath(id);
        Fx.ExtraSocketsToRemove.Add(socket);
        try
        {
            var real = Fx.Shims.RealBinary(runtime)!;
            var env = new Dictionary<string, string>
            {
                ["TTRPC_ADDRESS"] = Containerd.TtrpcAddress, ["GRPC_ADDRESS"] = Containerd.Address, ["NAMESPACE"] = PrivateContainerd.Namespace,
            };
            var args = new[] { "-namespace", PrivateContainerd.Namespace, "-address", Containerd.Address, "-publish-binary", "/usr/bin/containerd", "-id", id, "start" };
            var starts = await Task.WhenAll(
                ExternalCommand.RunAsync(real, args, TimeSpan.FromSeconds(20), env: env, workingDirectory: bundle),
                ExternalCommand.RunAsync(real, args, TimeSpan.FromSeconds(20), env: env, workingDirectory: bundle));
            // Both must agree on the address and leave exactly one server. The stock runc shim sometimes fails the
            // losing call cleanly ("write existing socket for shim: open .address: file exists", exit 1); that is
            // tolerated here, a second server or a different address is not.
            var succeeded = starts.Where(s => s.ExitCode == 0).ToList();
            output.WriteLine($"{runtime}: {succeeded.Count} of 2 concurrent starts succeeded");
            Assert.True(succeeded.Count >= 1, "no start succeeded:\n" + string.Join("\n", starts.Select(s => s.ToString())));
            foreach (var s in succeeded) Assert.Equal("unix://" + socket, s.Stdout.Trim());
            foreach (var s in starts.Where(s => s.ExitCode != 0))
                Assert.False(s.TimedOut, "a concurrent start hung:\n" + s);

            await Task.Delay(300);
            var servers = Fx.LiveShimProcesses();
            Assert.True(servers.Count == 1, $"expected exactly one shim server, found {servers.Count}: " +
                string.Join("; ", servers.Select(p => $"{p} {string.Join(' ', ProcFs.CommandLine(p))}")));

            // It serves ttrpc and leaves on Shutdown, holding no container.
            using var client = await RawTtrpcClient.ConnectAsync(socket);
            await client.SendAsync(1, "containerd.task.v2.Task", "Shutdown", new ProtoWriter().String(1, id).ToArray());
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (ProcFs.IsAlive(servers[0]) && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.False(ProcFs.IsAlive(servers[0]), "shim did not exit on Shutdown with no containers");
            Assert.False(File.Exists(socket), "shim left its socket after Shutdown: " + socket);
        }
        finally
        {
            Libc.Close(logFd);
            foreach (var pid in Fx.LiveShimProcesses()) Libc.Kill(pid, Libc.SIGKILL);
            if (File.Exists(socket)) File.Delete(socket);
        }
    }
}
