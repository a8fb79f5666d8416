namespace DiffKeeper.Recorder.Config;

/// <summary>What diffkeeperd runs with: defaults, then the config file, then environment, then flags.</summary>
internal sealed class DaemonConfig
{
    public const string DefaultStore = "/var/lib/diffkeeper";
    public const string DefaultSocket = "/run/diffkeeper/diffkeeperd.sock";
    public const string DefaultConfigFile = "/etc/diffkeeper/config.toml";
    public const string DefaultMetricsAddress = "127.0.0.1:9464";

    public string Store = DefaultStore;
    public string Socket = DefaultSocket;
    /// <summary>Where shims freeze exit states; null = &lt;store&gt;/spool (what a shim assumes when it cannot ask).</summary>
    public string? SpoolDir;
    /// <summary>The recording's time resolution: changes to one path within one frame are one version.</summary>
    public TimeSpan Frame = TimeSpan.FromMilliseconds(100);
    /// <summary>"always" or "failure" (drop a recording whose container exited 0); the container's
    /// io.diffkeeper/keep annotation overrides it.</summary>
    public string Keep = "always";
    /// <summary>Regular files larger than this are not read while the container runs (a gap says so); the exit
    /// state still holds them whole. 0 = no limit.</summary>
    public long MaxLiveFileSize = 256L << 20;
    public int MaxContainers = 256;
    /// <summary>Capacity of the kernel's dirty set (inodes changed between two drains); more are lost, which costs a
    /// gap and a full rescan of every tracked upper directory.</summary>
    public int CaptureInodes = DiffKeeper.Bpf.ChangeCapture.DefaultDirtySetCapacity;
    /// <summary>How fast an exit state is read while other containers are recorded live (bytes/s; 0 = never paced).
    /// Nothing else live: full speed. See Spool/ExitIngestPacer.</summary>
    public long PacedRate = 64L << 20;
    /// <summary>Longest total hold-back of one exit ingest by pacing; after it the ingest finishes at full speed.</summary>
    public TimeSpan MaxPacedDelay = TimeSpan.FromSeconds(60);
    /// <summary>host:port of the Prometheus endpoint; "" = off.</summary>
    public string MetricsAddress = DefaultMetricsAddress;
    public string? BpfObject;
    /// <summary>REGISTRY/REPO each finished recording is pushed to (config `push`); null = none.</summary>
    public string? Push;
    /// <summary>"failure" (only recordings of containers that exited non-zero) or "always".</summary>
    public string PushWhen = "failure";
    public bool PushPlainHttp;

    public string EffectiveSpoolDir => SpoolDir is { Length: > 0 } s ? s : Path.Combine(Store, "spool");
}
