using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DiffKeeper.Recorder.Metrics;

/// <summary>
/// GET /metrics over plain HTTP/1.1 on a TCP address (default 127.0.0.1:9464, Prometheus' conventional exporter
/// port range). One request per connection; anything else is 404. Reads at most 8 KiB of request head, with a
/// timeout, so a slow or hostile client costs one socket for a few seconds at most.
/// </summary>
internal sealed class MetricsServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly DaemonMetrics _metrics;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    public MetricsServer(string address, DaemonMetrics metrics)
    {
        _metrics = metrics;
        _listener = new TcpListener(Parse(address));
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    public static IPEndPoint Parse(string address)
    {
        if (IPEndPoint.TryParse(address, out var ep) && address.Contains(':')) return ep; // port 0 = any free port (tests)
        int colon = address.LastIndexOf(':');
        if (colon > 0 && address[..colon] == "localhost" && int.TryParse(address[(colon + 1)..], out var port))
            return new IPEndPoint(IPAddress.Loopback, port);
        throw new FormatException($"metrics address \"{address}\" is not HOST:PORT (e.g. 127.0.0.1:9464)");
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try { s = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { await Task.Delay(100); continue; }
            _ = Task.Run(() => Serve(s));
        }
    }

    private async Task Serve(Socket s)
    {
        using var _ = s;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var buf = new byte[8192];
            int n = 0;
            while (n < buf.Length)
            {
                int r = await s.ReceiveAsync(buf.AsMemory(n), SocketFlags.None, timeout.Token);
                if (r == 0) break;
                n += r;
                if (buf.AsSpan(0, n).IndexOf("\r\n\r\n"u8) >= 0 || buf.AsSpan(0, n).IndexOf("\n\n"u8) >= 0) break;
            }
            var head = Encoding.ASCII.GetString(buf, 0, n);
            var first = head.Split('\n')[0].Trim().Split(' ');
            string status, type, body;
            if (first.Length >= 2 && first[0] is "GET" or "HEAD" && (first[1] == "/metrics" || first[1].StartsWith("/metrics?", StringComparison.Ordinal)))
            {
                status = "200 OK"; type = "text/plain; version=0.0.4; charset=utf-8"; body = _metrics.Render();
                if (first[0] == "HEAD") body = "";
            }
            else { status = "404 Not Found"; type = "text/plain; charset=utf-8"; body = "diffkeeperd: only GET /metrics is served\n"; }
            var bytes = Encoding.UTF8.GetBytes(body);
            var reply = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
            await s.SendAsync(reply, SocketFlags.None, timeout.Token);
            await s.SendAsync(bytes, SocketFlags.None, timeout.Token);
        }
        catch (Exception) { /* a client that went away or timed out */ }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try { await _loop; } catch (Exception) { }
    }
}
