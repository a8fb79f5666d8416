namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>One container under a real daemon: temp dir, overlay, container shell, store and spool, cleaned up in reverse.</summary>
public sealed class Scenario : IAsyncDisposable
{
    public TempDir Dir { get; }
    public OverlayMount Overlay { get; }
    public ContainerShell Shell { get; }
    public DaemonProcess Daemon { get; set; } = null!;
    public DaemonBinaries Bins { get; }
    public Cli Cli { get; }
    public string Store { get; }
    public string Socket { get; }
    public string Spool => Path.Combine(Store, "spool");
    public ContainerInfo Info { get; }

    private Scenario(DaemonBinaries bins, Action<string>? fillLower, IDictionary<string, string>? annotations)
    {
        Bins = bins;
        Dir = new TempDir("dk-daemon-test-", onDisk: true);
        try
        {
            Store = Path.Combine(Dir.Path, "store");
            Socket = Path.Combine(Dir.Path, "run", "diffkeeperd.sock");
            Cli = new Cli(bins, Store);
            Overlay = new OverlayMount(Dir, fillLower);
            Shell = new ContainerShell(Overlay.Merged);
            Info = new ContainerInfo
            {
                Namespace = "dktest", Id = "c-" + Guid.NewGuid().ToString("N")[..8],
                Bundle = Dir.Path, Rootfs = Overlay.Merged, UpperDir = Overlay.Upper, WorkDir = Overlay.Work, RootfsType = "overlay",
                InitPid = Shell.Pid, MountNamespace = Shell.MountNamespace, ShimPid = Environment.ProcessId,
                Process = new OciProcess { Args = { "sh", "-c", "steps" }, EnvNames = { "PATH", "SECRET_TOKEN" }, Cwd = "/", Uid = 0, Gid = 0 },
            };
            Info.LowerDirs.Add(Overlay.Lower);
            if (annotations != null) foreach (var (k, v) in annotations) Info.Annotations[k] = v;
        }
        catch
        {
            Shell?.Dispose();
            Overlay?.Dispose();
            Dir.Dispose();
            throw;
        }
    }

    public static async Task<Scenario> StartAsync(DaemonBinaries bins, Action<string>? fillLower = null, IDictionary<string, string>? annotations = null,
        bool startDaemon = true, string? configToml = null)
    {
        var s = new Scenario(bins, fillLower, annotations);
        try
        {
            string? config = null;
            if (configToml != null) File.WriteAllText(config = Path.Combine(s.Dir.Path, "config.toml"), configToml);
            if (startDaemon) s.Daemon = await DaemonProcess.StartAsync(bins, s.Store, s.Socket, config);
        }
        catch
        {
            await s.DisposeAsync();
            throw;
        }
        return s;
    }

    public async ValueTask DisposeAsync()
    {
        if (Daemon != null) await Daemon.DisposeAsync();
        Shell?.Dispose();
        Overlay?.Dispose();
        Dir.Dispose();
    }
}
