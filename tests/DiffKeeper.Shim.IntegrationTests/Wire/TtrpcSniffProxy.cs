using System.Net.Sockets;

namespace DiffKeeper.Shim.IntegrationTests.Wire;

public enum SniffDirection { ClientToServer, ServerToClient }

public sealed record SniffedFrame(int Connection, SniffDirection Direction, TtrpcFrame Frame, DateTime At);

/// <summary>
/// A unix-socket proxy that decodes ttrpc frames as it forwards them. Put in front of containerd's ttrpc socket
/// (via a shim's TTRPC_ADDRESS) it shows exactly what a shim publishes: stream ids, Forward metadata, type URLs.
/// </summary>
public sealed class TtrpcSniffProxy : IDisposable
{
    private readonly Socket _listener;
    private readonly string _upstream;
    private readonly List<SniffedFrame> _frames = new();
    private readonly List<string> _errors = new();
    private readonly List<Socket> _sockets = new();
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    public TtrpcSniffProxy(string listenPath, string upstreamPath)
    {
        ListenPath = listenPath;
        _upstream = upstreamPath;
        if (File.Exists(listenPath)) File.Delete(listenPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(listenPath));
        _listener.Listen(16);
        _ = AcceptLoopAsync();
    }

    public string ListenPath { get; }
    public IReadOnlyList<SniffedFrame> Frames { get { lock (_frames) return _frames.ToList(); } }
    public IReadOnlyList<string> Errors { get { lock (_errors) return _errors.ToList(); } }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception) { return; }
            var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try { await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_upstream)); }
            catch (Exception e)
            {
                lock (_errors) _errors.Add("upstream connect failed: " + e.Message);
                client.Dispose();
                continue;
            }
            lock (_sockets) { _sockets.Add(client); _sockets.Add(upstream); }
            var n = Interlocked.Increment(ref _connections);
            _ = PumpAsync(n, SniffDirection.ClientToServer, client, upstream);
            _ = PumpAsync(n, SniffDirection.ServerToClient, upstream, client);
        }
    }

    private async Task PumpAsync(int connection, SniffDirection direction, Socket from, Socket to)
    {
        await using var src = new NetworkStream(from, ownsSocket: false);
        await using var dst = new NetworkStream(to, ownsSocket: false);
        try
        {
            while (await TtrpcFrame.ReadAsync(src, _stop.Token) is { } frame)
            {
                lock (_frames) _frames.Add(new SniffedFrame(connection, direction, frame, DateTime.UtcNow));
                await dst.WriteAsync(frame.Encode(), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away; closing our side of the other socket propagates it.
        }
        catch (Exception e)
        {
            lock (_errors) _errors.Add($"{direction} decode error: {e.Message}");
        }
        try { to.Shutdown(SocketShutdown.Send); } catch (Exception) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        lock (_sockets) foreach (var s in _sockets) s.Dispose();
        try { File.Delete(ListenPath); } catch (IOException) { }
    }
}
