using System.Net.Sockets;
using System.Text.Json;

namespace DiffKeeper.Node.Tests;

/// <summary>`diffkeeper doctor` as a node check: each finding follows the real state it reads, and says what to run.</summary>
public class DoctorTests
{
    private static Dictionary<string, JsonElement> Doctor(string config, string socket, out int code)
    {
        // DIFFKEEPER_STORE unset: the node mode (a set one means "check that store only").
        var (c, o, e) = Node.Run(Node.Cli, ["doctor", "--json", "--containerd-config", config, "--socket", socket],
            new Dictionary<string, string> { ["DIFFKEEPER_STORE"] = "" });
        code = c;
        var rows = o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .Where(r => r.TryGetProperty("check", out _)).ToList();
        Assert.True(rows.Count >= 8, $"doctor printed {rows.Count} findings (exit {c}):\n{o}\n{e}");
        return rows.ToDictionary(r => r.GetProperty("check").GetString()!);
    }

    [SkippableFact]
    public void Doctor_FollowsTheConfigAndTheSocket_AndSaysWhatToRun()
    {
        using var t = new TempDir("dk-node-");
        var config = t["config.toml"];
        File.Copy(Node.SamplePath("containerd-1.6-default.toml"), config);
        var socket = t["dkd.sock"];

        var before = Doctor(config, socket, out int code1);
        Assert.Equal(1, code1);
        Assert.False(before["containerd config"].GetProperty("ok").GetBoolean());
        Assert.StartsWith("diffkeeper setup containerd", before["containerd config"].GetProperty("fix").GetString());
        Assert.False(before["daemon socket"].GetProperty("ok").GetBoolean());
        Assert.Contains("systemctl enable --now diffkeeperd", before["daemon socket"].GetProperty("fix").GetString());
        // The kernel findings say what this machine has.
        Assert.Equal(File.Exists("/sys/kernel/btf/vmlinux"), before["kernel BTF"].GetProperty("ok").GetBoolean());
        // The reference kernel (6.18) has both writeback tracepoints; any kernel with BTF ≥ 5.17 does.
        Assert.Equal(File.Exists("/sys/kernel/btf/vmlinux"), before["tracepoints"].GetProperty("ok").GetBoolean());
        Assert.Equal(Integration.IsRoot, before["BPF permission"].GetProperty("ok").GetBoolean());
        Assert.Equal(File.Exists("/usr/lib/x86_64-linux-gnu/libbpf.so.1") || File.Exists("/lib64/libbpf.so.1"), before["libbpf"].GetProperty("ok").GetBoolean());

        Assert.Equal(0, Node.Run(Node.Cli, ["setup", "containerd", "--config", config, "--containerd-version", "1.6.20"]).Code);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socket));
        listener.Listen(4);

        var after = Doctor(config, socket, out _);
        Assert.True(after["containerd config"].GetProperty("ok").GetBoolean(), after["containerd config"].ToString());
        Assert.True(after["daemon socket"].GetProperty("ok").GetBoolean());
    }

    [SkippableFact]
    public void Doctor_WithAStore_ChecksOnlyThatStore()
    {
        using var t = new TempDir("dk-node-");
        var (code, o, e) = Node.Run(Node.Cli, ["--store", t["nostore"], "doctor"]);
        Assert.Equal(3, code);
        Assert.Contains("no store", e);
        Assert.DoesNotContain("kernel BTF", o);
    }
}
