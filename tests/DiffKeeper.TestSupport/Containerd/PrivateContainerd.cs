using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace DiffKeeper.TestSupport.Containerd;

/// <summary>
/// A containerd of our own, so tests never touch the system daemon: root, state, gRPC and ttrpc sockets, config and
/// log all under one temp directory, and a PATH whose first entry (when given) holds the shims under test. The CRI
/// plugin is off unless <see cref="CriPlugin"/> supplies its configuration. Stopped by pid (SIGTERM, then SIGKILL);
/// <see cref="DisposeAsync"/> also removes the directory when the instance made it.
/// </summary>
public sealed class PrivateContainerd : IAsyncDisposable
{
    /// <summary>The containerd namespace the tests use.</summary>
    public const string Namespace = "dk";

    private Process? _process;
    private readonly bool _ownsRoot;
    private readonly IReadOnlyDictionary<string, string> _extraEnvironment;

    /// <param name="root">The directory for everything (kept short: unix socket paths are limited to 108 bytes).</param>
    /// <param name="shimBinDir">Put first on containerd's PATH, where it looks for containerd-shim-* binaries.</param>
    /// <param name="extraEnvironment">Added to containerd's environment, which the shims it starts inherit.</param>
    public PrivateContainerd(string root, string? shimBinDir = null, IReadOnlyDictionary<string, string>? extraEnvironment = null)
        : this(root, shimBinDir, extraEnvironment, ownsRoot: false) { }

    private PrivateContainerd(string root, string? shimBinDir, IReadOnlyDictionary<string, string>? extraEnvironment, bool ownsRoot)
    {
        Root = root;
        ShimBinDir = shimBinDir;
        _ownsRoot = ownsRoot;
        _extraEnvironment = extraEnvironment ?? new Dictionary<string, string>();
        ConfigPath = Path.Combine(root, "config.toml");
        Address = Path.Combine(root, "c.sock");
        LogPath = Path.Combine(root, "containerd.log");
        // containerd's shim -socket allows 106 bytes; leave room.
        if (Encoding.UTF8.GetByteCount(TtrpcAddress) > 100) throw new InvalidOperationException("socket path too long: " + TtrpcAddress);
    }

    /// <summary>A containerd in a new temp directory (removed at dispose), started and serving.</summary>
    public static async Task<PrivateContainerd> StartInTempAsync(string? shimBinDir = null)
    {
        var instance = new PrivateContainerd(Directory.CreateTempSubdirectory("dk-ctd-").FullName, shimBinDir, null, ownsRoot: true);
        try
        {
            await instance.StartAsync();
        }
        catch
        {
            await instance.DisposeAsync();
            throw;
        }
        return instance;
    }

    public string Root { get; }
    public string? ShimBinDir { get; }
    public string ConfigPath { get; }
    /// <summary>The gRPC socket (what ctr's -a takes).</summary>
    public string Address { get; }
    /// <summary>The ttrpc socket containerd serves next to the gRPC one (events for shims).</summary>
    public string TtrpcAddress => Address + ".ttrpc";
    public string LogPath { get; }
    public string StateDir => Path.Combine(Root, "state");
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>
    /// The body of <c>[plugins."io.containerd.grpc.v1.cri"]</c> (TOML lines below that table, sub-tables written in
    /// full): null keeps the CRI plugin disabled. Read when the config is written, at each <see cref="StartAsync"/>.
    /// </summary>
    public string? CriPlugin { get; set; }

    public string BundleDir(string id) => Path.Combine(StateDir, "io.containerd.runtime.v2.task", Namespace, id);
    public string WorkDir(string id) => Path.Combine(Root, "root", "io.containerd.runtime.v2.task", Namespace, id);
    public static string RuncStateDir(string id) => Path.Combine("/run/containerd/runc", Namespace, id);

    /// <summary>The shim socket containerd expects for a group: /run/containerd/s/hex(sha256(address/ns/group)).</summary>
    public string ShimSocketPath(string groupId) =>
        "/run/containerd/s/" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Address}/{Namespace}/{groupId}")));

    private void WriteConfig()
    {
        var config = new StringBuilder($"""
            version = 2
            root = "{Root}/root"
            state = "{Root}/state"

            """);
        if (CriPlugin is null) config.AppendLine("""disabled_plugins = ["io.containerd.grpc.v1.cri"]""");
        config.Append($"""
            [grpc]
              address = "{Address}"
            [ttrpc]
              address = "{TtrpcAddress}"
            [debug]
              address = ""
              level = "info"
            [metrics]
              address = ""
            [plugins."io.containerd.internal.v1.opt"]
              path = "{Root}/opt"

            """);
        if (CriPlugin is not null) config.AppendLine("""[plugins."io.containerd.grpc.v1.cri"]""").AppendLine(CriPlugin);
        File.WriteAllText(ConfigPath, config.ToString());
    }

    /// <summary>Writes the config, starts containerd and waits until both its sockets accept connections.</summary>
    public async Task StartAsync()
    {
        if (Pid is not null) throw new InvalidOperationException("containerd is already running");
        WriteConfig();
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // exec: the Process pid is containerd's own pid; output goes to a file, so no pipe ties it to us.
        foreach (var a in new[] { "-c", "exec containerd --config \"$0\" >>\"$1\" 2>&1 </dev/null", ConfigPath, LogPath })
            psi.ArgumentList.Add(a);
        foreach (var (name, value) in _extraEnvironment) psi.Environment[name] = value;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["PATH"] = ShimBinDir is null ? path : ShimBinDir + ":" + path;
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(await AcceptsAsync(Address) && await AcceptsAsync(TtrpcAddress)))
        {
            if (_process.HasExited) throw new InvalidOperationException($"containerd exited ({_process.ExitCode}):\n{TailLog()}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"containerd not serving after 30 s:\n{TailLog()}");
            await Task.Delay(50);
        }
    }

    private static async Task<bool> AcceptsAsync(string socketPath)
    {
        if (!File.Exists(socketPath)) return false;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>SIGTERM, then SIGKILL after a grace period. Shims are not containerd's children: they survive.</summary>
    public async Task StopAsync()
    {
        if (_process == null) return;
        if (!_process.HasExited)
        {
            Libc.Kill(_process.Id, Libc.SIGTERM);
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

    /// <summary>argv for ctr against this containerd, in the tests' namespace.</summary>
    public string[] CtrArgs(params string[] args) => ["-a", Address, "-n", Namespace, .. args];

    /// <summary>The whole log.</summary>
    public string Log
    {
        get
        {
            try { return File.ReadAllText(LogPath); }
            catch (IOException) { return "<no containerd log>"; }
        }
    }

    public string TailLog(int lines = 40)
    {
        try { return string.Join('\n', File.ReadAllLines(LogPath).TakeLast(lines)); }
        catch (IOException) { return "<no containerd log>"; }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsRoot)
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
