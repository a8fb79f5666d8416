using System.Net;
using System.Net.Sockets;

namespace DiffKeeper.TestSupport;

/// <summary>Loopback TCP ports for the servers tests start (a registry, the daemon's /metrics, a token server).</summary>
public static class Ports
{
    /// <summary>A port the kernel just handed out and released: free now (another process could take it before the server binds; tests accept that).</summary>
    public static int Free()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
