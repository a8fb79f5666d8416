using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.FlightRecorder;

/// <summary>
/// The whole flight recorder for real: a private containerd whose shims find a real <c>diffkeeperd</c> (eBPF capture,
/// RocksDB store under the fixture's root) through DIFFKEEPER_SOCKET / DIFFKEEPER_STORE in containerd's environment,
/// the real <c>diffkeeper</c> CLI to read what was recorded, and a test image that also holds <c>dkwork</c> (a static
/// helper for mmap writes, tests/bench/overhead/dkwork.c). The daemon can be killed and restarted by a test.
/// </summary>
public sealed class RecorderFixture : ContainerdFixture
{
    private BackgroundProcess? _daemon;
    private string? _binDir;

    public string StoreDir => Path.Combine(Root, "store");
    public string Socket => Path.Combine(Root, "dkd.sock");
    public string ConfigPath => Path.Combine(Root, "diffkeeperd.toml");
    public string ManifestScript => Path.Combine(AppContext.BaseDirectory, "FlightRecorder", "tree_manifest.py");
    public string DkWork => Path.Combine(Root, "dkwork");
    public string Cli => Path.Combine(_binDir ?? throw new InvalidOperationException("no bin dir"), "diffkeeper");
    public int? DaemonPid => _daemon is { HasExited: false } d ? d.Pid : null;

    /// <summary>The recorder's frame (one version per path per frame): what timing assertions allow for.</summary>
    public static readonly TimeSpan Frame = TimeSpan.FromMilliseconds(100);

    protected override async Task BeforeContainerdStartsAsync()
    {
        _binDir = Binaries.GivenDir ?? throw new InvalidOperationException(
            "DIFFKEEPER_BIN_DIR is not set: the recorder tests need the built diffkeeperd and diffkeeper (make build)");
        foreach (var b in new[] { "diffkeeperd", "diffkeeper" })
            if (!File.Exists(Path.Combine(_binDir, b))) throw new InvalidOperationException($"{_binDir}/{b} missing (make build)");
        var source = Path.Combine(Binaries.RequireRepoRoot(), "tests", "bench", "overhead", "dkwork.c");
        var cc = await ExternalCommand.RunAsync("gcc", new[] { "-static", "-O2", "-o", DkWork, source }, TimeSpan.FromSeconds(60));
        if (cc.ExitCode != 0) throw new InvalidOperationException("could not build dkwork:\n" + cc);
        await File.WriteAllTextAsync(ConfigPath, "# the recorder tests' daemon: defaults, no metrics port\nmetrics_address = \"\"\n");
        await StartDaemonAsync();
    }

    protected override IReadOnlyList<string> ExtraImageBinaries() => [DkWork];

    protected override IReadOnlyDictionary<string, string> ContainerdEnvironment() => new Dictionary<string, string>
    {
        ["DIFFKEEPER_SOCKET"] = Socket,
        ["DIFFKEEPER_STORE"] = StoreDir,
    };

    public async Task StartDaemonAsync()
    {
        if (DaemonPid != null) throw new InvalidOperationException("diffkeeperd already running");
        _daemon?.Dispose();
        _daemon = new BackgroundProcess(Path.Combine(_binDir!, "diffkeeperd"),
            new[] { "--store", StoreDir, "--socket", Socket, "--config", ConfigPath });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(Socket) && await AnswersAsync()) return;
            if (_daemon.HasExited) break;
            await Task.Delay(50);
        }
        throw new InvalidOperationException("diffkeeperd did not come up:\n" + _daemon);
    }

    /// <summary>SIGKILL, as a crash or an OOM kill would: no flush, no socket removal.</summary>
    public async Task KillDaemonAsync()
    {
        if (_daemon == null || _daemon.HasExited) return;
        Libc.Kill(_daemon.Pid, Libc.SIGKILL);
        await _daemon.WaitForExitAsync(TimeSpan.FromSeconds(10));
    }

    public async Task StopDaemonAsync()
    {
        if (_daemon == null || _daemon.HasExited) return;
        Libc.Kill(_daemon.Pid, Libc.SIGTERM);
        if (!await _daemon.WaitForExitAsync(TimeSpan.FromSeconds(20))) await KillDaemonAsync();
    }

    public string DaemonOutput => _daemon?.ToString() ?? "<no daemon>";

    private async Task<bool> AnswersAsync()
    {
        // The CLI reads the store without the daemon; the socket accepting a connection is the daemon's readiness.
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, 0);
        try { await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Socket)); return true; }
        catch (System.Net.Sockets.SocketException) { return false; }
    }

    /// <summary>The CLI against the fixture's store.</summary>
    public Task<CommandResult> Dk(params string[] args) =>
        ExternalCommand.RunAsync(Cli, new[] { "--store", StoreDir }.Concat(args), TimeSpan.FromSeconds(60));

    public override async Task DisposeAsync()
    {
        // The daemon first: it holds the store under Root, which the base removes. Containers still around at this
        // point are then frozen into the spool by their shims (daemon absent) and go away with Root.
        try
        {
            await StopDaemonAsync();
            _daemon?.Dispose();
        }
        finally { await base.DisposeAsync(); }
    }
}

[CollectionDefinition(Name)]
public sealed class RecorderCollection : ICollectionFixture<RecorderFixture>
{
    public const string Name = "private containerd with diffkeeperd";
}
