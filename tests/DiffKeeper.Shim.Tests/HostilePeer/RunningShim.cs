using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Tests.Events;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// A real shim started the way containerd starts it: bundle directory as cwd with a config.json and a
/// <c>log</c> FIFO (held open for reading here), <c>TTRPC_ADDRESS</c> at a test events service, and
/// <c>-namespace … -address … -publish-binary … -id … start</c>. Disposing shuts it down, SIGKILLs it if it
/// lingers, and removes its socket and every temp file.
/// </summary>
internal sealed class RunningShim : IAsyncDisposable
{
    public const string TaskService = "containerd.task.v2.Task";
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(10);

    private readonly TempDir _dir;
    private readonly LogFifoReader _log;

    private RunningShim(TempDir dir, LogFifoReader log, RecordingEventsService events)
    {
        _dir = dir;
        _log = log;
        Events = events;
    }

    public string Namespace { get; private init; } = "";
    public string Id { get; private init; } = "";
    public string ContainerdAddress { get; private init; } = "";
    public string Bundle { get; private init; } = "";
    /// <summary>What <c>start</c> printed, exactly.</summary>
    public string PrintedAddress { get; private init; } = "";
    public string SocketPath => PrintedAddress["unix://".Length..];
    public int Pid { get; private set; }
    public TimeSpan StartDuration { get; private init; }
    public RecordingEventsService Events { get; }
    public string Log => _log.Text;

    /// <param name="prepareBundle">Called with the bundle path before start, e.g. to write a runnable spec and rootfs.</param>
    public static async Task<RunningShim> StartAsync(Action<string>? prepareBundle = null)
    {
        Integration.RequireRoot("needs root: the shim binds its socket in /run/containerd/s");
        var binary = await Binaries.RequireOrPublishAsync(Binaries.Shim, "src/DiffKeeper.Shim");
        var dir = new TempDir("dkh-");
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var bundle = dir.Sub("bundle");
        Directory.CreateDirectory(bundle);
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        File.WriteAllText(Path.Combine(bundle, "config.json"), """{"ociVersion":"1.0.2","annotations":{}}""");
        Libc.MkFifo(Path.Combine(bundle, "log"));
        prepareBundle?.Invoke(bundle);
        var log = new LogFifoReader(Path.Combine(bundle, "log"));
        var events = RecordingEventsService.Listen(dir.Sub("ev.sock"));

        var ns = "dk-hostile-" + suffix;
        var id = "h" + suffix;
        var containerdAddress = dir.Sub("fake.sock");
        var psi = new ProcessStartInfo(binary)
        {
            ArgumentList = { "-namespace", ns, "-address", containerdAddress, "-publish-binary", "/bin/true", "-id", id, "start" },
            WorkingDirectory = bundle,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.Environment["TTRPC_ADDRESS"] = events.SocketPath;
        psi.Environment["GOMAXPROCS"] = "2";
        // The shim's recorder stays inside the test: no daemon, and the spool entry each container's exit leaves goes
        // into the temp dir rather than /var/lib/diffkeeper.
        psi.Environment["DIFFKEEPER_SOCKET"] = dir.Sub("no-diffkeeperd.sock");
        psi.Environment["DIFFKEEPER_STORE"] = dir.Sub("store");

        var clock = Stopwatch.StartNew();
        using var start = Process.Start(psi)!;
        start.StandardInput.Close(); // no runtime options
        var stdout = start.StandardOutput.ReadToEndAsync();
        var stderr = start.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(StartBound);
        try
        {
            await start.WaitForExitAsync(bound.Token);
            // EOF on stdout too: the server it spawned must not hold containerd's pipe.
            await Task.WhenAll(stdout, stderr).WaitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            try { start.Kill(); } catch { }
            await CleanupAfterFailedStart(dir, log, events, ns, id, containerdAddress);
            throw new TimeoutException($"shim start did not finish (or its stdout stayed open) within {StartBound}");
        }
        var duration = clock.Elapsed;
        var printed = await stdout;
        var shim = new RunningShim(dir, log, events)
        {
            Namespace = ns, Id = id, ContainerdAddress = containerdAddress, Bundle = bundle, PrintedAddress = printed,
            StartDuration = duration,
        };
        try
        {
            if (start.ExitCode != 0 || !printed.StartsWith("unix:///run/containerd/s/", StringComparison.Ordinal))
                throw new InvalidOperationException($"shim start failed: exit {start.ExitCode}, stdout '{printed}', stderr '{await stderr}'");
            await using var client = await shim.ConnectAsync();
            var connect = await client.CallAsync(TaskService, "Connect", new ConnectRequest { Id = id }, ConnectResponse.Parser,
                timeout: TimeSpan.FromSeconds(5));
            shim.Pid = (int)connect.ShimPid;
            return shim;
        }
        catch
        {
            await shim.DisposeAsync();
            throw;
        }
    }

    /// <summary>The address containerd computes for this shim: sha256 of "&lt;address&gt;/&lt;ns&gt;/&lt;id&gt;".</summary>
    public string ExpectedAddress =>
        "unix:///run/containerd/s/" +
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{ContainerdAddress}/{Namespace}/{Id}")));

    public Task<TtrpcClient> ConnectAsync() => TtrpcClient.ConnectAsync(PrintedAddress);

    public bool IsAlive => Pid > 0 && Libc.IsAlive(Pid);

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (IsAlive)
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(20);
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (IsAlive)
        {
            try
            {
                await using var client = await ConnectAsync();
                await client.CallAsync(TaskService, "Shutdown", new ShutdownRequest { Id = Id }, Google.Protobuf.WellKnownTypes.Empty.Parser,
                    timeout: TimeSpan.FromSeconds(3));
            }
            catch (Exception) { /* already going, or wedged: SIGKILL below */ }
            if (!await WaitForExitAsync(TimeSpan.FromSeconds(3))) Libc.Kill(Pid, Libc.SIGKILL);
        }
        await RemoveRuncStateAsync();
        await CleanupAfterFailedStart(_dir, _log, Events, Namespace, Id, ContainerdAddress);
    }

    /// <summary>A test that created a container and failed half-way leaves runc state (and maybe processes): force it away.</summary>
    private async Task RemoveRuncStateAsync()
    {
        var root = Path.Combine("/run/containerd/runc", Namespace);
        if (Namespace.Length == 0 || !Directory.Exists(root)) return;
        try
        {
            using var runc = Process.Start(new ProcessStartInfo("runc") { ArgumentList = { "--root", root, "delete", "--force", Id }, RedirectStandardError = true })!;
            await runc.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception) { /* runc missing or stuck: nothing more we can do here */ }
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    }

    private static async Task CleanupAfterFailedStart(TempDir dir, LogFifoReader log, RecordingEventsService events,
        string ns, string id, string containerdAddress)
    {
        // The socket name is known even when start failed half-way; remove it only if nothing serves there.
        var socket = "/run/containerd/s/" +
                     Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{containerdAddress}/{ns}/{id}")));
        if (File.Exists(socket))
        {
            try
            {
                await using var probe = await TtrpcClient.ConnectAsync(socket);
            }
            catch (Exception)
            {
                try { File.Delete(socket); } catch (IOException) { }
            }
        }
        log.Dispose();
        await events.DisposeAsync();
        dir.Dispose();
    }
}
