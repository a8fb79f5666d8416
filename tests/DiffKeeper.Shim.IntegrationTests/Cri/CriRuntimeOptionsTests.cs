using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using DiffKeeper.Shim.IntegrationTests.Wire;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.IntegrationTests.Cri;

/// <summary>
/// Runtime options through containerd's CRI plugin, driven over gRPC as the kubelet does (runtime.v1): a pod
/// sandbox (a container) started under each runtime's handler runs through the BinaryName its options name.
/// </summary>
[Collection(CriContainerdCollection.Name)]
public sealed class CriRuntimeOptionsTests(CriContainerdFixture fixture, ITestOutputHelper output)
{
    private const string Service = "runtime.v1.RuntimeService";

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Cri01_PodSandbox_RunsThroughTheBinaryNameOfItsRuntimeOptions(string runtime)
    {
        fixture.Require(runtime);
        await fixture.EnsureImagesAsync();
        var name = fixture.NewId("c01", runtime);
        using var cri = new ContainerdGrpc(fixture.Containerd.Address, CriContainerdFixture.CriNamespace);
        // Host network: no CNI needed; no hostname (runc cannot set one without a UTS namespace of its own).
        var config = new ProtoWriter()
            .Message(1, new ProtoWriter().String(1, name).String(2, name).String(3, "dk-test"))
            .Message(8, new ProtoWriter().Message(2, new ProtoWriter().Message(1, new ProtoWriter().Varint(1, 2))));
        var reply = await cri.CallAsync(Service, "RunPodSandbox",
            new ProtoWriter().Message(1, config).String(2, CriContainerdFixture.Handler(runtime)).ToArray());
        var sandbox = ProtoReader.Parse(reply).First(1)?.String ?? throw new Xunit.Sdk.XunitException("no pod_sandbox_id");
        try
        {
            var calls = fixture.WrapperFor(runtime).Calls().Where(c => c.Length > 0 && c[^1] == sandbox).ToList();
            output.WriteLine($"{runtime}: sandbox {sandbox}\n  " + string.Join("\n  ", calls.Select(c => string.Join(' ', c))));
            Assert.Contains(calls, c => c.Contains("create"));
            Assert.Contains(calls, c => c.Contains("start"));
        }
        finally
        {
            var id = new ProtoWriter().String(1, sandbox).ToArray();
            await cri.CallAsync(Service, "StopPodSandbox", id);
            await cri.CallAsync(Service, "RemovePodSandbox", id);
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (fixture.LiveShimProcesses().Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Empty(fixture.LiveShimProcesses());
        Assert.Empty(ProcFs.MountPointsUnder(Path.Combine(fixture.Containerd.StateDir, "io.containerd.runtime.v2.task", CriContainerdFixture.CriNamespace)));
    }
}
