using System.Diagnostics;
using System.Text;
using DiffKeeper.Ttrpc;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>
/// The real diffkeeperd on a temp socket and store, and a ttrpc client speaking to it as the shim does. Ended by
/// pid on dispose (SIGTERM, then SIGKILL), also when a test fails.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    public const string Service = "diffkeeper.recorder.v1.Recorder";
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    public string Socket { get; }
    public string Store { get; }
    public int Pid => _process.Id;
    public int? MetricsPort { get; private set; }
    private TtrpcClient? _client;

    private DaemonProcess(Process p, string socket, string store)
    {
        _process = p;
        Socket = socket;
        Store = store;
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<DaemonProcess> StartAsync(DaemonBinaries bins, string store, string socket, string? config = null, string frame = "100ms")
    {
        var args = new List<string> { "--store", store, "--socket", socket, "--frame", frame };
        int? metricsPort = null;
        if (config != null) { args.Add("--config"); args.Add(config); }
        else
        {
            // A private config: metrics on a free port, so test daemons never fight over 9464.
            var cfg = Path.Combine(Path.GetDirectoryName(store)!, "config-" + Guid.NewGuid().ToString("N")[..6] + ".toml");
            metricsPort = Ports.Free();
            File.WriteAllText(cfg, $"metrics_address = \"127.0.0.1:{metricsPort}\"\n");
            args.Add("--config"); args.Add(cfg);
        }
        if (bins.BpfObject != null) { args.Add("--bpf-object"); args.Add(bins.BpfObject); }
        var psi = new ProcessStartInfo(bins.Daemon, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment.Remove("NOTIFY_SOCKET");
        var p = Process.Start(psi)!;
        var d = new DaemonProcess(p, socket, store) { MetricsPort = metricsPort };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (d._log) d._log.AppendLine(e.Data);
        };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (d._log) d._log.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (p.HasExited) throw new Xunit.Sdk.XunitException($"diffkeeperd exited at start (code {p.ExitCode}):\n{d.Log}");
            if (File.Exists(socket))
            {
                try
                {
                    await d.StatusAsync();
                    return d;
                }
                catch (Exception) when (DateTime.UtcNow < deadline) { d._client = null; }
            }
            if (DateTime.UtcNow > deadline) { await d.DisposeAsync(); throw new Xunit.Sdk.XunitException($"diffkeeperd did not serve within 20 s:\n{d.Log}"); }
            await Task.Delay(50);
        }
    }

    /// <summary>The body of GET /metrics on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<string> ScrapeAsync(int port)
    {
        using var tcp = new System.Net.Sockets.TcpClient("127.0.0.1", port);
        var stream = tcp.GetStream();
        await stream.WriteAsync("GET /metrics HTTP/1.0\r\nConnection: close\r\n\r\n"u8.ToArray());
        return await new StreamReader(stream).ReadToEndAsync();
    }


    private async Task<TtrpcClient> Client()
    {
        if (_client is { IsConnected: true }) return _client;
        _client = await TtrpcClient.ConnectAsync(Socket);
        return _client;
    }

    public async Task<TResp> CallAsync<TReq, TResp>(string method, TReq req, Google.Protobuf.MessageParser<TResp> parser)
        where TReq : Google.Protobuf.IMessage<TReq> where TResp : Google.Protobuf.IMessage<TResp>
    {
        var c = await Client();
        return await c.CallAsync(Service, method, req, parser, timeout: TimeSpan.FromSeconds(10));
    }

    public Task<StatusResponse> StatusAsync() => CallAsync("Status", new StatusRequest(), StatusResponse.Parser);

    public Task<TrackResponse> TrackAsync(ContainerInfo c, DateTime createdAt) =>
        CallAsync("Track", new TrackRequest { Container = c, CreatedAt = Timestamp.FromDateTime(createdAt) }, TrackResponse.Parser);

    public Task LifecycleAsync(string ns, string id, string kind, DateTime time, int pid = 0, string execId = "", int exitStatus = 0) =>
        CallAsync("Lifecycle", new LifecycleRequest { Namespace = ns, Id = id, Kind = kind, Time = Timestamp.FromDateTime(time), Pid = pid, ExecId = execId, ExitStatus = exitStatus },
            LifecycleResponse.Parser);

    public Task ExitedAsync(string ns, string id, string entry, int status, DateTime exitedAt) =>
        CallAsync("Exited", new ExitedRequest { Namespace = ns, Id = id, SpoolEntry = entry, ExitStatus = status, ExitedAt = Timestamp.FromDateTime(exitedAt) },
            ExitedResponse.Parser);

    /// <summary>SIGTERM and wait for the exit code (the graceful path).</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (_client != null) { await _client.DisposeAsync(); _client = null; }
        Libc.Kill(_process.Id, Libc.SIGTERM);
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: what a crash leaves.</summary>
    public async Task KillAsync()
    {
        if (_client != null) { await _client.DisposeAsync(); _client = null; }
        if (!_process.HasExited) Libc.Kill(_process.Id, Libc.SIGKILL);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_client != null) { try { await _client.DisposeAsync(); } catch (Exception) { } }
        if (!_process.HasExited)
        {
            Libc.Kill(_process.Id, Libc.SIGTERM);
            if (!_process.WaitForExit(15_000)) { Libc.Kill(_process.Id, Libc.SIGKILL); _process.WaitForExit(); }
        }
        _process.Dispose();
    }

}
