using System.Net;
using Prometheus;

namespace DiffKeeper.Recorder.Metrics;

/// <summary>GET /metrics on host:port (default 127.0.0.1:9464) through prometheus-net's MetricServer.</summary>
internal sealed class MetricsServer : IDisposable
{
    private readonly MetricServer _server;
    public IPEndPoint Endpoint { get; }

    public MetricsServer(string address, DaemonMetrics metrics)
    {
        Endpoint = Parse(address);
        _server = new MetricServer(Endpoint.Address.ToString(), Endpoint.Port, "metrics/", metrics.Registry);
        try { _server.Start(); }
        catch (HttpListenerException e) { throw new System.Net.Sockets.SocketException(e.ErrorCode); }
    }

    public static IPEndPoint Parse(string address)
    {
        int colon = address.LastIndexOf(':');
        if (colon > 0 && int.TryParse(address[(colon + 1)..], out var port) && port is > 0 and < 65536)
        {
            var host = address[..colon];
            if (host == "localhost") return new IPEndPoint(IPAddress.Loopback, port);
            if (IPAddress.TryParse(host.Trim('[', ']'), out var ip)) return new IPEndPoint(ip, port);
        }
        throw new FormatException($"metrics address \"{address}\" is not IP:PORT (e.g. 127.0.0.1:9464)");
    }

    public void Dispose() => _server.Dispose();
}
