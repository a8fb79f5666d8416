using System.Net.Sockets;
using System.Runtime.InteropServices;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Recorder.Capture;
using DiffKeeper.Recorder.Config;
using DiffKeeper.Recorder.Metrics;
using DiffKeeper.Recorder.Native;
using DiffKeeper.Recorder.Tracking;
using DiffKeeper.Store;
using DiffKeeper.Ttrpc;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace DiffKeeper.Recorder;

/// <summary>diffkeeperd: the node's recorder daemon. See docs/recorder.md.</summary>
internal static class Program
{
    public const string Version = "0.1.0";

    private const string Usage = """
        diffkeeperd — the DiffKeeper recorder daemon (one per node)

        Usage: diffkeeperd [options]

          --store DIR         the recording store (env DIFFKEEPER_STORE; default /var/lib/diffkeeper)
          --socket PATH       the API socket, mode 0600 (env DIFFKEEPER_SOCKET; default /run/diffkeeper/diffkeeperd.sock)
          --config FILE       TOML config (default /etc/diffkeeper/config.toml; a missing default file = defaults)
          --bpf-object PATH   the eBPF object (default: diffkeeper.bpf.o beside diffkeeperd, then /usr/lib/diffkeeper/)
          --frame DURATION    the recording's time resolution (default 100ms)
          --private DIR       started by `diffkeeper record` for its store (DIR: its socket, pid file and locks):
                              stop once no `record` uses it, also when the last one was killed without a word
          --help, --version

        Precedence: flags, then environment, then the config file, then defaults.
        SIGTERM/SIGINT: stop accepting, finish in-flight ingests, flush, remove the socket, exit 0.
        """;

    public static int Main(string[] args)
    {
        try
        {
            return Run(args);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"diffkeeperd: {e.Message}");
            return 2;
        }
        catch (StoreLockedException e)
        {
            Console.Error.WriteLine($"diffkeeperd: {e.Message}");
            return 5;
        }
        catch (Exception e) when (e is CorruptDataException or IOException or UnauthorizedAccessException or SocketException)
        {
            Console.Error.WriteLine($"diffkeeperd: {e.Message}");
            return 1;
        }
    }

    private static void Log(string message) =>
        Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} diffkeeperd: {message}");

    private static int Run(string[] args)
    {
        string? store = null, socket = null, configFile = null, bpf = null, frame = null, privateDir = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? inline = null;
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0) { inline = a[(eq + 1)..]; a = a[..eq]; }
            string Value() => inline ?? (i + 1 < args.Length ? args[++i] : throw new ConfigException($"{a} needs a value (see --help)"));
            switch (a)
            {
                case "--help" or "-h": Console.Out.Write(Usage + "\n"); return 0;
                case "--version": Console.Out.WriteLine($"diffkeeperd {Version}"); return 0;
                case "--store": store = Value(); break;
                case "--socket": socket = Value(); break;
                case "--config": configFile = Value(); break;
                case "--bpf-object": bpf = Value(); break;
                case "--frame": frame = Value(); break;
                case "--private": privateDir = Value(); break;
                default: throw new ConfigException($"unknown argument \"{args[i]}\" (see --help)");
            }
        }

        var config = new DaemonConfig();
        var file = configFile ?? DaemonConfig.DefaultConfigFile;
        if (File.Exists(file)) ConfigFile.Apply(config, file, File.ReadAllText(file));
        else if (configFile != null) throw new ConfigException($"{configFile}: no such config file");
        if (Environment.GetEnvironmentVariable("DIFFKEEPER_STORE") is { Length: > 0 } envStore) config.Store = envStore;
        if (Environment.GetEnvironmentVariable("DIFFKEEPER_SOCKET") is { Length: > 0 } envSocket) config.Socket = envSocket;
        if (store != null) config.Store = store;
        if (socket != null) config.Socket = socket;
        if (bpf != null) config.BpfObject = bpf;
        if (frame != null)
        {
            if (!Durations.TryParse(frame, out var f)) throw new ConfigException($"--frame: \"{frame}\" is not a duration such as 100ms");
            config.Frame = Durations.CheckFrame(f, "--frame");
        }
        config.Store = Path.GetFullPath(config.Store);
        config.Socket = Path.GetFullPath(config.Socket);
        if (config.MetricsAddress.Length > 0)
        {
            try { MetricsServer.Parse(config.MetricsAddress); }
            catch (FormatException e) { throw new ConfigException(e.Message); }
        }

        using var stopping = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopping.Cancel(); });

        using var rstore = RecordingStore.Open(config.Store);
        var metrics = new DaemonMetrics();
        using var capture = CaptureLoader.Load(config.BpfObject, config.CaptureInodes, Log);
        using var recorder = new ContainerRecorder(config, rstore, capture, metrics, Log);
        using var listener = Listen(config.Socket);
        using var pusher = config.Push is not null ? new Push.PushWorker(config, metrics.Registry, Log) : null;
        if (pusher is not null) recorder.RecordingKept = pusher.Finished;

        var server = new TtrpcServer(new TtrpcServerOptions { Log = Log, RequireSameUser = true, ShutdownGracePeriod = TimeSpan.FromSeconds(5) });
        new RecorderService(recorder, Log).Register(server);
        MetricsServer? metricsServer = null;
        if (config.MetricsAddress.Length > 0)
        {
            try { metricsServer = new MetricsServer(config.MetricsAddress, metrics); }
            catch (Exception e) when (e is SocketException or System.Net.HttpListenerException) { Log($"metrics off: cannot listen on {config.MetricsAddress}: {e.Message}"); }
        }
        if (privateDir != null)
        {
            var own = new Lifecycle.PrivateDaemon(Path.GetFullPath(privateDir), Log);
            // Every connection that closes may have been the last `record` (a killed one ends no other way).
            server.ConnectionClosed += _ => Task.Run(() => RetireIfUnused(own, recorder, stopping));
        }
        recorder.Start();
        var serving = server.ServeAsync(listener, stopping.Token);
        Log($"serving on {config.Socket} (store {config.Store}, spool {config.EffectiveSpoolDir}, frame {config.Frame.TotalMilliseconds}ms, " +
            $"capture {(capture.Available ? "ready" : "off: " + capture.UnavailableReason)}{(metricsServer != null ? $", metrics http://{metricsServer.Endpoint}/metrics" : "")})");
        SdNotify.Send("READY=1\nSTATUS=recording");

        try { serving.Wait(); } catch (AggregateException) { }
        if (!stopping.IsCancellationRequested) Log($"ttrpc server stopped: {serving.Exception?.GetBaseException().Message}");
        Log("stopping: finishing calls in flight and queued exit states");
        SdNotify.Send("STOPPING=1");
        try { File.Delete(config.Socket); } catch (IOException) { }
        recorder.BeginShutdown();
        server.DisposeAsync().AsTask().Wait();
        recorder.Stop(TimeSpan.FromSeconds(30));
        metricsServer?.Dispose();
        rstore.Flush();
        Log("stopped");
        return 0;
    }

    /// <summary>A private daemon (--private) that records nothing and that no `record` uses any more stops.</summary>
    private static void RetireIfUnused(Lifecycle.PrivateDaemon own, ContainerRecorder recorder, CancellationTokenSource stopping)
    {
        try
        {
            if (stopping.IsCancellationRequested || !recorder.Idle || !own.TryRetire()) return;
            Log($"private daemon: no diffkeeper record uses it any more ({own.Directory}): stopping");
            stopping.Cancel();
        }
        catch (ObjectDisposedException) { } // already stopped
    }

    /// <summary>
    /// Binds the API socket: parent directory 0700, socket 0600 (root only: the API can make the daemon read any
    /// container's files). A stale socket left by a killed daemon is replaced; a live one is an error.
    /// </summary>
    private static Socket Listen(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir)) Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (File.Exists(path) || Directory.Exists(path))
        {
            if (Directory.Exists(path)) throw new IOException($"{path} is a directory, not a socket");
            using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    probe.Connect(new UnixDomainSocketEndPoint(path));
                    throw new IOException($"another diffkeeperd is already serving {path}");
                }
                catch (SocketException) { /* nobody listens: stale */ }
            }
            File.Delete(path);
        }
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        // umask first: the socket never exists with wider permissions, not even between bind and chmod.
        var old = Tmds.Linux.LibC.umask(0x3F /* 077 */);
        try { s.Bind(new UnixDomainSocketEndPoint(path)); }
        finally { Tmds.Linux.LibC.umask(old); }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        s.Listen(128);
        return s;
    }
}
