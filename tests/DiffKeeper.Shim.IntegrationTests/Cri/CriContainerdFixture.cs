using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Cri;

/// <summary>
/// A private containerd with its CRI plugin on (docs/shim-contract.md#the-cri-path), whose runtimes carry runc
/// options the way a node's config.toml does: handler "runc" (io.containerd.runc.v2) with `options.BinaryName`,
/// handler "diffkeeper" (ours) with `options.ConfigPath` pointing at a TOML file that says `BinaryName` —
/// containerd 1.6's CRI hands a non-runc runtime only runtimeoptions.v1 fields. Each BinaryName is a logging runc
/// wrapper.
/// </summary>
public sealed class CriContainerdFixture : ContainerdFixture
{
    public const string CriNamespace = "k8s.io";
    public const string PauseImage = "docker.io/library/dkpause:latest";
    private readonly SemaphoreSlim _imagesGate = new(1, 1);
    private bool _imagesImported;

    public RuncWrapper RuncHandlerWrapper { get; private set; } = null!;
    public RuncWrapper DiffKeeperHandlerWrapper { get; private set; } = null!;

    /// <summary>The CRI handler (`RunPodSandbox.runtime_handler`) that selects a runtime in this config.</summary>
    public static string Handler(string runtime) => runtime == ShimRuntimes.Runc ? "runc" : "diffkeeper";

    public RuncWrapper WrapperFor(string runtime) => runtime == ShimRuntimes.Runc ? RuncHandlerWrapper : DiffKeeperHandlerWrapper;

    /// <summary>The CRI plugin on, with the two handlers and their logging runc wrappers.</summary>
    protected override string? CriPlugin()
    {
        RuncHandlerWrapper = new RuncWrapper(Root, "runc-cri-rc");
        DiffKeeperHandlerWrapper = new RuncWrapper(Root, "runc-cri-dk");
        var dkOptions = Path.Combine(Root, "diffkeeper-runc.toml");
        File.WriteAllText(dkOptions, new TestRuncOptions { BinaryName = DiffKeeperHandlerWrapper.Path }.ToToml());
        const string cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        return $"""
              sandbox_image = "{PauseImage}"
              # No CAP_SYS_RESOURCE here: CRI's -998 oom_score_adj would make runc fail (docs/shim-contract.md).
              restrict_oom_score_adj = true
              [{cri}.cni]
                bin_dir = "{Root}/cni/bin"
                conf_dir = "{Root}/cni/conf"
              [{cri}.containerd]
                default_runtime_name = "runc"
                [{cri}.containerd.runtimes.runc]
                  runtime_type = "{ShimRuntimes.Runc}"
                  [{cri}.containerd.runtimes.runc.options]
                    BinaryName = "{RuncHandlerWrapper.Path}"
                [{cri}.containerd.runtimes.diffkeeper]
                  runtime_type = "{ShimRuntimes.DiffKeeper}"
                  [{cri}.containerd.runtimes.diffkeeper.options]
                    ConfigPath = "{dkOptions}"
            """;
    }

    /// <summary>busybox and a pause-like image (a sandbox must keep running) in CRI's namespace, once.</summary>
    public async Task EnsureImagesAsync()
    {
        await _imagesGate.WaitAsync();
        try
        {
            if (_imagesImported) return;
            var busybox = Path.Combine(Root, "busybox-oci.tar");
            var pause = Path.Combine(Root, "pause-oci.tar");
            await BusyboxOciImage.WriteArchiveAsync(pause, name: PauseImage, cmdJson: "[\"sleep\",\"1000000\"]");
            foreach (var archive in new[] { busybox, pause })
            {
                var r = await ExternalCommand.RunAsync("ctr", ["-a", Containerd.Address, "-n", CriNamespace, "image", "import", archive], TimeSpan.FromSeconds(60));
                if (r.ExitCode != 0) throw new InvalidOperationException("image import into k8s.io failed:\n" + r);
            }
            _imagesImported = true;
        }
        finally
        {
            _imagesGate.Release();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class CriContainerdCollection : ICollectionFixture<CriContainerdFixture>
{
    public const string Name = "private containerd with CRI";
}
