using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// A containerd of our own: root, state, gRPC and ttrpc sockets and config all under one temp dir, the CRI plugin
/// off, and a PATH whose first entry holds the shims under test. Stopped by pid.
/// </summary>
public sealed class PrivateContainerd
{
    public const string Namespace = "dk";

    private Process? _process;
    private readonly IReadOnlyDictionary<string, string> _extraEnvironment;

    /// <param name="extraEnvironment">Added to containerd's environment, which the shims it starts inherit.</param>
    public PrivateContainerd(string root, string shimBinDir, IReadOnlyDictionary<string, string>? extraEnvironment = null)
    {
        Root = root;
        ShimBinDir = shimBinDir;
        _extraEnvironment = extraEnvironment ?? new Dictionary<string, string>();
        ConfigPath = Path.Combine(root, "config.toml");
        Address = Path.Combine(root, "c.sock");
        LogPath = Path.Combine(root, "containerd.log");
        // Unix socket paths are limited (108 bytes, 106 for containerd's shim -socket): keep the root short.
        if (Encoding.UTF8.GetByteCount(Address + ".ttrpc") > 100) throw new InvalidOperationException("socket path too long: " + Address);
        File.WriteAllText(ConfigPath, $"""
            version = 2
            root = "{root}/root"
            state = "{root}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "{Address}"
            [ttrpc]
              address = "{TtrpcAddress}"
            [debug]
              level = "info"
            [plugins."io.containerd.internal.v1.opt"]
              path = "{root}/opt"
            """);
    }

    public string Root { get; }
    public string ShimBinDir { get; }
    public string ConfigPath { get; }
    public string Address { get; }
    public string TtrpcAddress => Address + ".ttrpc";
    public string LogPath { get; }
    public string StateDir => Path.Combine(Root, "state");
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public string BundleDir(string id) => Path.Combine(StateDir, "io.containerd.runtime.v2.task", Namespace, id);
    public string WorkDir(string id) => Path.Combine(Root, "root", "io.containerd.runtime.v2.task", Namespace, id);
    public static string RuncStateDir(string id) => Path.Combine("/run/containerd/runc", Namespace, id);

    /// <summary>The shim socket containerd expects for a group: /run/containerd/s/hex(sha256(address/ns/group)).</summary>
    public string ShimSocketPath(string groupId) =>
        "/run/containerd/s/" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Address}/{Namespace}/{groupId}")));

    public async Task StartAsync()
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // exec: the Process pid is containerd's own pid; output goes to a file, so no pipe ties it to us.
        foreach (var a in new[] { "-c", "exec containerd --config \"$0\" >>\"$1\" 2>&1 </dev/null", ConfigPath, LogPath })
            psi.ArgumentList.Add(a);
        foreach (var (name, value) in _extraEnvironment) psi.Environment[name] = value;
        psi.Environment["PATH"] = ShimBinDir + ":" + (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin");
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var v = await ExternalCommand.RunAsync("ctr", new[] { "-a", Address, "version" }, TimeSpan.FromSeconds(5));
            if (v.ExitCode == 0) return;
            if (_process.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"containerd did not come up (exited={_process.HasExited}):\n{TailLog()}");
            await Task.Delay(100);
        }
    }

    /// <summary>SIGTERM, then SIGKILL after a grace period. Shims are not containerd's children: they survive.</summary>
    public async Task StopAsync()
    {
        if (_process == null) return;
        if (!_process.HasExited)
        {
            Native.kill(_process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }
        _process.Dispose();
        _process = null;
    }

    public Task<CommandResult> CtrAsync(IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null) =>
        ExternalCommand.RunAsync("ctr", new[] { "-a", Address, "-n", Namespace }.Concat(args), timeout, stdin);

    public Task<CommandResult> CtrAsync(params string[] args) => CtrAsync(args, null);

    /// <summary>argv for running ctr against this containerd (for callers that spawn it themselves).</summary>
    public string[] CtrArgs(params string[] args) => new[] { "-a", Address, "-n", Namespace }.Concat(args).ToArray();

    public string TailLog(int lines = 40)
    {
        try { return string.Join('\n', File.ReadAllLines(LogPath).TakeLast(lines)); }
        catch (IOException) { return "<no containerd log>"; }
    }
}
