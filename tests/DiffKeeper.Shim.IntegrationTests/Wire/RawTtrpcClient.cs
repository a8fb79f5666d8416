using System.Net.Sockets;

namespace DiffKeeper.Shim.IntegrationTests.Wire;

/// <summary>
/// A bare ttrpc client for wire-level checks: sends frames exactly as given (any stream id, pipelined) and records
/// responses in arrival order.
/// </summary>
public sealed class RawTtrpcClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly List<TtrpcFrame> _received = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Task _readLoop;

    private RawTtrpcClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _readLoop = ReadLoopAsync();
    }

    public static async Task<RawTtrpcClient> ConnectAsync(string socketPath)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        return new RawTtrpcClient(s);
    }

    public IReadOnlyList<TtrpcFrame> Received { get { lock (_received) return _received.ToList(); } }
    public bool Closed { get; private set; }

    public async Task SendAsync(uint streamId, string service, string method, byte[] payload)
    {
        var frame = new TtrpcFrame(streamId, TtrpcFrame.Request, 0,
            new TtrpcRequest(service, method, payload, 0, Array.Empty<KeyValuePair<string, string>>()).Encode());
        await _writeLock.WaitAsync();
        try { await _stream.WriteAsync(frame.Encode()); }
        finally { _writeLock.Release(); }
    }

    public async Task<TtrpcFrame> ResponseAsync(uint streamId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (_received)
                if (_received.FirstOrDefault(f => f.StreamId == streamId) is { } f) return f;
            if (Closed) break;
            await Task.Delay(10);
        }
        throw new Xunit.Sdk.XunitException($"no ttrpc response on stream {streamId} within {timeout.TotalSeconds}s (closed={Closed}); got streams [{string.Join(",", Received.Select(r => r.StreamId))}]");
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (await TtrpcFrame.ReadAsync(_stream) is { } frame)
                lock (_received) _received.Add(frame);
        }
        catch (Exception) { /* closed */ }
        Closed = true;
    }

    public void Dispose()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        _socket.Dispose();
        _stream.Dispose();
    }
}
