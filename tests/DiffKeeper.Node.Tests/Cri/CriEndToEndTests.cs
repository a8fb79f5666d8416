using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using DiffKeeper.Node.Tests.Cri.V1;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace DiffKeeper.Node.Tests.Cri;

/// <summary>
/// Kubernetes' path, end to end, as the kubelet drives it: a private containerd with the CRI plugin on, whose
/// config gets its runtimes only from `diffkeeper setup containerd`; the real diffkeeperd; a pod sandbox with
/// runtime_handler "diffkeeper" (what a RuntimeClass sends) and an io.diffkeeper/exclude annotation; a container
/// that writes files; then the recording as `diffkeeper ls` / `show` see it.
/// </summary>
[Collection("packages")]
public sealed class CriEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private const string Namespace = "k8s.io";
    private const string PauseImage = "docker.io/library/dkpause:latest";
    private const string BusyboxImage = "docker.io/library/dkbusybox:latest";
    private readonly TempDir _dir = new("dk-node-");
    private Process? _daemon;
    private int? _containerdPid;

    private string R => _dir.Path;
    private string Sock => Path.Combine(R, "containerd.sock");
    private string Lib => Path.Combine(Node.RepoRoot, "scripts", "lib", "private-containerd.sh");

    [SkippableFact]
    public async Task PodUnderRuntimeHandlerDiffkeeper_IsRecordedUnderItsNames_AndItsAnnotationApplies()
    {
        Integration.Require(Integration.IsRoot, "needs root");
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && File.Exists("/bin/busybox"), "needs containerd, ctr, busybox-static");
        foreach (var b in new[] { Binaries.Daemon, Binaries.Cli, Binaries.Shim }) Binaries.Require(b);

        // containerd's config without any runtime: `diffkeeper setup containerd` adds runc and ours.
        var config = Path.Combine(R, "config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{R}/root"
            state = "{R}/state"
            [grpc]
              address = "{Sock}"
            [ttrpc]
              address = "{Sock}.ttrpc"
            [plugins."io.containerd.internal.v1.opt"]
              path = "{R}/opt"
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{PauseImage}"
              # No CAP_SYS_RESOURCE here: CRI's -998 oom_score_adj would make runc fail (docs/shim-contract.md).
              restrict_oom_score_adj = true
              [plugins."io.containerd.grpc.v1.cri".cni]
                bin_dir = "{R}/cni/bin"
                conf_dir = "{R}/cni/conf"

            """);
        var setup = Node.Run(Node.Cli, ["setup", "containerd", "--config", config, "--options-file", Path.Combine(R, "runc.toml")]);
        output.WriteLine(setup.Out);
        Assert.True(setup.Code == 0, setup.Err + setup.Out);
        Assert.Contains("restart containerd", setup.Out);

        // The daemon and containerd (whose environment, and so every shim's, points at the daemon).
        var store = Path.Combine(R, "store");
        var dsock = Path.Combine(R, "dkd.sock");
        File.WriteAllText(Path.Combine(R, "dkd.toml"), "metrics_address = \"\"\n");
        _daemon = Process.Start(new ProcessStartInfo(Binaries.Require(Binaries.Daemon), ["--store", store, "--socket", dsock, "--config", Path.Combine(R, "dkd.toml")])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        _daemon.BeginErrorReadLine(); _daemon.BeginOutputReadLine();
        await WaitFor(() => File.Exists(dsock), "diffkeeperd socket");

        Directory.CreateDirectory(Path.Combine(R, "bin"));
        File.CreateSymbolicLink(Path.Combine(R, "bin", "containerd-shim-diffkeeper-v1"), Binaries.Require(Binaries.Shim));
        var psi = new ProcessStartInfo("setsid", ["containerd", "--config", config]) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PATH"] = Path.Combine(R, "bin") + ":" + Environment.GetEnvironmentVariable("PATH");
        psi.Environment["DIFFKEEPER_SOCKET"] = dsock;
        psi.Environment["DIFFKEEPER_STORE"] = store;
        var containerd = Process.Start(psi)!;
        _containerdPid = containerd.Id;
        var log = new System.Text.StringBuilder();
        containerd.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        containerd.BeginErrorReadLine(); containerd.BeginOutputReadLine();
        await WaitFor(() => File.Exists(Sock), "containerd socket");

        using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(Sock), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            },
        });
        var runtime = new RuntimeService.RuntimeServiceClient(channel);
        var images = new ImageService.ImageServiceClient(channel);
        VersionResponse? version = null;
        await WaitFor(() => { try { version = runtime.Version(new VersionRequest { Version = "v1" }); return true; } catch (Grpc.Core.RpcException) { return false; } },
            "the CRI plugin (runtime.v1.RuntimeService/Version): " + log);
        output.WriteLine($"CRI: {version!.RuntimeName} {version.RuntimeVersion} api {version.RuntimeApiVersion}");

        // Images into CRI's namespace: busybox, and a pause-like one whose process keeps the sandbox alive.
        ImportImage(BusyboxImage, "[\"sh\"]");
        ImportImage(PauseImage, "[\"sleep\",\"1000000\"]");
        foreach (var i in new[] { BusyboxImage, PauseImage })
            Assert.NotNull(images.ImageStatus(new ImageStatusRequest { Image = new ImageSpec { Image = i } }).Image);

        // The same pod twice: with an exclude annotation, and without (the control that shows what it changed).
        var excluded = await RunPod(runtime, "dk-pod", new() { ["io.diffkeeper/exclude"] = "/tmp/**" });
        var plain = await RunPod(runtime, "dk-plain", new());

        var shim = Binaries.Require(Binaries.Shim);
        // A shim with the recorder hook holds the daemon's default socket path (a .NET literal: UTF-16 in the binary; its last character is not reliably laid out, so the prefix).
        Skip.IfNot(File.ReadAllBytes(shim).AsSpan().IndexOf(System.Text.Encoding.Unicode.GetBytes("/run/diffkeeper/diffkeeperd.so")) >= 0,
            "CRI path, setup and runtime handler verified; the recording is not: this tree's shim has no recorder hook");
        var cli = Binaries.Require(Binaries.Cli);
        var recExcluded = await Recording(cli, store, excluded);
        var recPlain = await Recording(cli, store, plain);
        output.WriteLine(recExcluded.ToString());
        Assert.Equal("dk-pod/writer", recExcluded.GetProperty("name").GetString());
        Assert.Equal("dk-plain/writer", recPlain.GetProperty("name").GetString());
        // The pod's namespace is a label of the recording (no verb prints labels yet): read the store itself.
        using (var rs = DiffKeeper.Store.RecordingStore.Open(store, readOnly: true))
        {
            var info = rs.ListRecordings().Single(r => r.ContainerId == excluded);
            Assert.Equal("dk-team", info.Labels.GetValueOrDefault("io.kubernetes.pod.namespace"));
        }
        var idExcluded = recExcluded.GetProperty("id").GetString()!;
        var idPlain = recPlain.GetProperty("id").GetString()!;
        Assert.Equal("kept\n", Node.Ok(cli, "--store", store, "show", idExcluded, "/data/kept.txt"));
        Assert.Equal("kept\n", Node.Ok(cli, "--store", store, "show", idPlain, "/data/kept.txt"));
        // The annotation excluded /tmp: what the container wrote there is in the control's recording only.
        Assert.Equal("scratch\n", Node.Ok(cli, "--store", store, "show", idPlain, "/tmp/skipped.txt"));
        Assert.NotEqual(0, Node.Run(cli, ["--store", store, "show", idExcluded, "/tmp/skipped.txt"]).Code);
    }

    /// <summary>RunPodSandbox (handler diffkeeper) + a container that writes files, run to its exit, then the pod removed.</summary>
    private async Task<string> RunPod(RuntimeService.RuntimeServiceClient runtime, string podName, Dictionary<string, string> annotations)
    {
        var sandboxConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = podName, Uid = Guid.NewGuid().ToString(), Namespace = "dk-team" },
            // Host network: no CNI; no hostname (runc cannot set one without a UTS namespace of its own).
            Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
        };
        sandboxConfig.Annotations.Add(annotations);
        var sandbox = runtime.RunPodSandbox(new RunPodSandboxRequest { Config = sandboxConfig, RuntimeHandler = "diffkeeper" }).PodSandboxId;
        try
        {
            var containerId = runtime.CreateContainer(new CreateContainerRequest
            {
                PodSandboxId = sandbox, SandboxConfig = sandboxConfig,
                Config = new ContainerConfig
                {
                    Metadata = new ContainerMetadata { Name = "writer" },
                    Image = new ImageSpec { Image = BusyboxImage },
                    Command = { "sh", "-c", "mkdir -p /data && echo kept > /data/kept.txt && echo scratch > /tmp/skipped.txt && sleep 1" },
                },
            }).ContainerId;
            runtime.StartContainer(new StartContainerRequest { ContainerId = containerId });
            ContainerStatus? st = null;
            await WaitFor(() => (st = runtime.ContainerStatus(new ContainerStatusRequest { ContainerId = containerId }).Status).State == ContainerState.ContainerExited,
                "the container to exit", 60);
            Assert.True(st!.ExitCode == 0, $"container exit {st.ExitCode}: {st.Reason} {st.Message}");
            // Both the sandbox and the container ran under our runtime, picked by the handler setup added.
            foreach (var id in new[] { sandbox, containerId })
                Assert.Contains("\"io.containerd.diffkeeper.v1\"", Node.Ok("ctr", "-a", Sock, "-n", Namespace, "containers", "info", id));
            return containerId;
        }
        finally
        {
            runtime.StopPodSandbox(new StopPodSandboxRequest { PodSandboxId = sandbox });
            runtime.RemovePodSandbox(new RemovePodSandboxRequest { PodSandboxId = sandbox });
        }
    }

    /// <summary>The container's finished recording as `diffkeeper ls --json` lists it.</summary>
    private static async Task<JsonElement> Recording(string cli, string store, string containerId)
    {
        JsonElement rec = default;
        await WaitFor(() =>
        {
            var ls = Node.Run(cli, ["--store", store, "ls", "--json"]).Out;
            foreach (var line in ls.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var r = JsonDocument.Parse(line).RootElement.Clone();
                if (r.GetProperty("container_id").GetString() == containerId && r.GetProperty("exit_status").ValueKind == JsonValueKind.Number) { rec = r; return true; }
            }
            return false;
        }, $"the recording of {containerId} in `diffkeeper ls`", 30);
        return rec;
    }

    private void ImportImage(string name, string cmdJson)
    {
        var (code, o, e) = Node.Run("bash", ["-c", "source \"$1\"; DK_DIR=$2; DK_SOCK=$3; DK_NS=$4; DK_IMAGE=$5; DK_IMAGE_CMD=$6; dk_busybox_image", "x",
            Lib, R, Sock, Namespace, name, cmdJson]);
        Assert.True(code == 0, $"image import of {name}: {e}{o}");
    }

    private static async Task WaitFor(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return;
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException($"timed out waiting for {what}");
    }

    /// <summary>containerd and its shims (by the TTRPC_ADDRESS marker, never by name), mounts and the temp dir.</summary>
    public void Dispose()
    {
        Node.Run("bash", ["-c", "source \"$1\"; DK_DIR=$2; DK_SOCK=$3; DK_NS=$4; DK_CONTAINERD_PID=$5; dk_containerd_stop", "x",
            Lib, R, Sock, Namespace, _containerdPid?.ToString() ?? ""], timeoutMs: 180_000);
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill();
            _daemon.WaitForExit(10_000);
        }
        _daemon?.Dispose();
        _dir.Dispose();
    }
}
