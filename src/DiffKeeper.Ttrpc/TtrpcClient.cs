using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using DiffKeeper.Ttrpc.Client;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc;

/// <summary>
/// A ttrpc client on one unix-socket connection. Calls may be issued concurrently: each gets the next odd stream
/// id, and one reader loop hands every response to the call waiting for its id, in whatever order they arrive.
/// </summary>
public sealed class TtrpcClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    /// <summary>Bigger frames are not skipped but end the connection: no ttrpc server sends them.</summary>
    private const long MaxSkippableSize = 64L << 20;

    /// <summary>Task.WaitAsync's limit; longer timeouts are only sent to the server.</summary>
    private static readonly TimeSpan MaxLocalWait = TimeSpan.FromMilliseconds(uint.MaxValue - 2);

    private readonly ConcurrentDictionary<uint, TaskCompletionSource<Response>> _pending = new();
    private readonly Task _readLoop;
    private readonly int _maxMessageSize;
    private int _lastStreamId = -1; // as uint: the next id is 1, then 3, 5, ...
    private volatile bool _closed;

    private TtrpcClient(Socket socket, int maxMessageSize)
    {
        _socket = socket;
        _maxMessageSize = maxMessageSize;
        _reader = new FrameReader(socket);
        _writer = new FrameWriter(socket);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>"unix:///path", "/path", or an abstract socket name (no prefix, as containerd does).</summary>
    public static Task<TtrpcClient> ConnectAsync(string address, CancellationToken ct = default) =>
        ConnectAsync(address, TtrpcFrame.DefaultMaxMessageSize, ct);

    public static async Task<TtrpcClient> ConnectAsync(string address, int maxMessageSize, CancellationToken ct = default)
    {
        var endpoint = UnixSocketAddress.Parse(address);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new TtrpcClient(socket, maxMessageSize);
    }

    /// <summary>False once the connection has dropped or the client was disposed.</summary>
    public bool IsConnected => !_closed;

    /// <summary>
    /// One unary call. Throws TtrpcException with the server's status on a non-OK answer, with DeadlineExceeded
    /// when <paramref name="timeout"/> passes first (the timeout is also sent so the server can give up), and
    /// with Unavailable when the connection is or becomes unusable. Cancelling <paramref name="ct"/> abandons
    /// the call locally (ttrpc has no cancel message) and throws OperationCanceledException.
    /// </summary>
    public async Task<TResp> CallAsync<TReq, TResp>(string service, string method, TReq request, MessageParser<TResp> parser,
        IEnumerable<KeyValuePair<string, string>>? metadata = null, TimeSpan? timeout = null, CancellationToken ct = default)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(parser);
        ThrowIfClosed();
        if (timeout == Timeout.InfiniteTimeSpan) timeout = null;
        if (timeout <= TimeSpan.Zero)
            throw new TtrpcException(TtrpcStatusCode.DeadlineExceeded, $"{service}/{method}: timeout {timeout} already passed");

        uint streamId = (uint)Interlocked.Add(ref _lastStreamId, 2);
        var envelope = Envelope.NewRequest(service, method, timeout, metadata);
        var reply = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[streamId] = reply;
        try
        {
            // The reader loop may have failed everything between ThrowIfClosed and registering this call.
            ThrowIfClosed();
            using (var frame = Envelope.EncodeRequest(streamId, envelope, request, _maxMessageSize))
                await SendAsync(frame, ct).ConfigureAwait(false);

            var response = timeout is { } t && t < MaxLocalWait
                ? await reply.Task.WaitAsync(t, ct).ConfigureAwait(false)
                : await reply.Task.WaitAsync(ct).ConfigureAwait(false);

            if (response.Status is { Code: not 0 } status)
                throw new TtrpcException((TtrpcStatusCode)status.Code, status.Message);
            try
            {
                return parser.ParseFrom(response.Payload.Span);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new TtrpcException(TtrpcStatusCode.Internal, $"{service}/{method}: undecodable response: {e.Message}");
            }
        }
        catch (TimeoutException)
        {
            throw new TtrpcException(TtrpcStatusCode.DeadlineExceeded, $"{service}/{method}: no reply within {timeout}");
        }
        finally
        {
            _pending.TryRemove(streamId, out _);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(PooledFrame frame, CancellationToken ct)
    {
        try
        {
            await _writer.WriteAsync(frame.Memory, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Close();
            throw new TtrpcException(TtrpcStatusCode.Unavailable, $"ttrpc: connection lost: {e.Message}");
        }
    }

    private async Task ReadLoopAsync()
    {
        string reason = "connection closed";
        try
        {
            while (await _reader.ReadHeaderAsync(CancellationToken.None).ConfigureAwait(false) is { } header)
            {
                if (!header.HasKnownType)
                {
                    reason = $"server sent a non-ttrpc frame (type 0x{(byte)header.Type:x2})";
                    break;
                }
                if (header.Length > MaxSkippableSize)
                {
                    reason = $"server sent a frame of {header.Length} bytes, beyond any ttrpc limit";
                    break;
                }
                if (header.Length > _maxMessageSize)
                {
                    // Like containerd's client: drop the payload, fail just that call, keep the connection.
                    await _reader.SkipAsync(header.Length, CancellationToken.None).ConfigureAwait(false);
                    if (header.Type == TtrpcMessageType.Response)
                        Fail(header.StreamId, new TtrpcException(TtrpcStatusCode.ResourceExhausted,
                            $"message length {header.Length} exceed maximum message size of {_maxMessageSize}"));
                    continue;
                }
                var response = await ReadResponseAsync(header).ConfigureAwait(false);
                if (response is not null && _pending.TryGetValue(header.StreamId, out var call))
                    call.TrySetResult(response);
            }
        }
        catch (Exception e)
        {
            reason = $"connection lost: {e.Message}";
        }
        finally
        {
            Close();
            _reader.Dispose();
            var unavailable = new TtrpcException(TtrpcStatusCode.Unavailable, $"ttrpc: {reason}");
            foreach (var streamId in _pending.Keys) Fail(streamId, unavailable);
        }
    }

    /// <summary>The decoded envelope of a response frame; null for other frame types or one that does not decode.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Response?> ReadResponseAsync(TtrpcFrameHeader header)
    {
        int length = (int)header.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await _reader.ReadPayloadAsync(buffer.AsMemory(0, length), CancellationToken.None).ConfigureAwait(false);
            if (header.Type != TtrpcMessageType.Response) return null;
            try
            {
                return Response.Parser.ParseFrom(buffer.AsSpan(0, length));
            }
            catch (InvalidProtocolBufferException e)
            {
                Fail(header.StreamId, new TtrpcException(TtrpcStatusCode.Internal, $"undecodable response envelope: {e.Message}"));
                return null;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Fail(uint streamId, Exception error)
    {
        if (_pending.TryGetValue(streamId, out var call)) call.TrySetException(error);
    }

    private void ThrowIfClosed()
    {
        if (_closed) throw new TtrpcException(TtrpcStatusCode.Unavailable, "ttrpc: client connection is closed");
    }

    private void Close()
    {
        _closed = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }

    /// <summary>Closes the connection; calls still waiting fail with Unavailable.</summary>
    public async ValueTask DisposeAsync()
    {
        Close();
        await _readLoop.ConfigureAwait(false);
    }
}
