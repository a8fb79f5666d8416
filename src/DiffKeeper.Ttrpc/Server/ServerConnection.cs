using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc.Server;

/// <summary>
/// One accepted connection: a single read loop that decodes requests and starts each call on the thread pool,
/// so a slow or pending call (containerd's Wait) never holds up the calls behind it. Replies go out in whatever
/// order the calls finish, through the connection's serialized writer.
/// </summary>
internal sealed class ServerConnection : IDisposable
{
    /// <summary>CancelAfter's limit.</summary>
    private static readonly TimeSpan MaxTimerDelay = TimeSpan.FromMilliseconds(uint.MaxValue - 2);

    private readonly Socket _socket;
    private readonly MethodTable _methods;
    private readonly TtrpcServerOptions _options;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly CancellationTokenSource _closing;
    private readonly SemaphoreSlim _callSlots;
    private readonly int _id;
    private int _callsInFlight;

    public ServerConnection(int id, Socket socket, MethodTable methods, TtrpcServerOptions options, CancellationToken serverStopping)
    {
        _id = id;
        _socket = socket;
        _methods = methods;
        _options = options;
        _reader = new FrameReader(socket, options.IncompleteFrameTimeout);
        _writer = new FrameWriter(socket);
        _closing = CancellationTokenSource.CreateLinkedTokenSource(serverStopping);
        _callSlots = new SemaphoreSlim(options.MaxConcurrentCallsPerConnection, options.MaxConcurrentCallsPerConnection);
    }

    public int CallsInFlight => Volatile.Read(ref _callsInFlight);

    /// <summary>Serves until the peer closes, sends something that is not ttrpc, or Close is called.</summary>
    public async Task RunAsync()
    {
        try
        {
            await ReadLoopAsync(_closing.Token).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            Log($"half frame: {e.Message}");
        }
        catch (InvalidDataException e)
        {
            Log($"closing: {e.Message}");
        }
        catch (Exception e) when (_reader.TimedOut && (e is ObjectDisposedException or SocketException))
        {
            Log($"half frame: incomplete after {_options.IncompleteFrameTimeout}, closing");
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Closed by us (server disposal) or reset by the peer: nothing more to say.
        }
        catch (Exception e)
        {
            // A bug of ours must cost this connection only, never the process.
            Log($"closing after unexpected error: {e}");
        }
        finally
        {
            Close();
            _reader.Dispose();
        }
    }

    /// <summary>Cancels the calls in flight and closes the socket; the read loop then ends.</summary>
    public void Close()
    {
        try { _closing.Cancel(); }
        catch (ObjectDisposedException) { }
        catch (AggregateException e) { Log($"a handler's connection-closed callback threw: {e.InnerException}"); } // the close goes on
        _socket.Dispose();
    }

    public void Dispose()
    {
        Close();
        _closing.Dispose();
        // _callSlots is not disposed: calls still finishing release it after the connection is gone.
    }

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        while (await _reader.ReadHeaderAsync(ct).ConfigureAwait(false) is { } header)
        {
            if (!header.HasKnownType)
                throw new InvalidDataException($"not a ttrpc frame (type byte 0x{(byte)header.Type:x2})");

            if (header.Length > _options.MaxMessageSize)
            {
                await RefuseOversizedAsync(header, ct).ConfigureAwait(false);
                continue;
            }

            if (header.Type != TtrpcMessageType.Request)
            {
                // Streaming data (or a stray response): not ours to handle, ignored as containerd's ttrpc does.
                await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
                continue;
            }

            var request = await ReadRequestAsync(header, ct).ConfigureAwait(false);
            if (request is null) continue;

            if (header.StreamId % 2 != 1)
            {
                await SendErrorAsync(header.StreamId, TtrpcStatusCode.InvalidArgument,
                    "StreamID must be odd for client initiated streams").ConfigureAwait(false);
                continue;
            }

            // Back-pressure: with every slot taken, stop reading until a call's reply has been written.
            await _callSlots.WaitAsync(ct).ConfigureAwait(false);
            Interlocked.Increment(ref _callsInFlight);
            var streamId = header.StreamId;
            _ = Task.Run(() => ServeCallAsync(streamId, request, ct));
        }
    }

    private async ValueTask RefuseOversizedAsync(TtrpcFrameHeader header, CancellationToken ct)
    {
        if (header.Length > _options.MaxSkippableSize)
            throw new InvalidDataException($"frame of {header.Length} bytes is beyond any ttrpc limit");
        await _reader.SkipAsync(header.Length, ct).ConfigureAwait(false);
        Log($"skipped oversized {header.Type} frame of {header.Length} bytes on stream {header.StreamId}");
        if (header.Type == TtrpcMessageType.Request)
            await SendErrorAsync(header.StreamId, TtrpcStatusCode.ResourceExhausted,
                $"message length {header.Length} exceed maximum message size of {_options.MaxMessageSize}").ConfigureAwait(false);
    }

    /// <summary>The decoded envelope, or null after answering InvalidArgument for one that does not decode.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Request?> ReadRequestAsync(TtrpcFrameHeader header, CancellationToken ct)
    {
        int length = (int)header.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await _reader.ReadPayloadAsync(buffer.AsMemory(0, length), ct).ConfigureAwait(false);
            return Request.Parser.ParseFrom(buffer.AsSpan(0, length));
        }
        catch (InvalidProtocolBufferException e)
        {
            await SendErrorAsync(header.StreamId, TtrpcStatusCode.InvalidArgument, $"unmarshal request error: {e.Message}")
                .ConfigureAwait(false);
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task ServeCallAsync(uint streamId, Request request, CancellationToken closing)
    {
        var timeout = request.TimeoutNano > 0 ? TimeSpan.FromTicks(request.TimeoutNano / 100) : (TimeSpan?)null;
        // Only a call with a deadline needs a token of its own; the others share the connection's. A deadline
        // beyond what a timer can hold (~49 days) is as good as none.
        using var deadline = timeout < MaxTimerDelay ? CancellationTokenSource.CreateLinkedTokenSource(closing) : null;
        try
        {
            deadline?.CancelAfter(timeout!.Value);
            var reply = await InvokeAsync(streamId, request, timeout, deadline, closing).ConfigureAwait(false);
            if (reply is { } frame)
                using (frame) await _writer.WriteAsync(frame.Memory, closing).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The connection closed while the call ran; the client has already failed it.
        }
        catch (Exception e)
        {
            Log($"stream {streamId}: reply not sent: {e}");
        }
        finally
        {
            Interlocked.Decrement(ref _callsInFlight);
            _callSlots.Release();
        }
    }

    /// <summary>Runs the handler and encodes its answer, whatever it does; null if nobody is left to answer.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<PooledFrame?> InvokeAsync(uint streamId, Request request, TimeSpan? timeout, CancellationTokenSource? deadline, CancellationToken closing)
    {
        var callToken = deadline?.Token ?? closing;
        try
        {
            var context = new TtrpcCallContext(request.Service, request.Method, MetadataOf(request), timeout, callToken, closing);
            var invoke = _methods.Find(request.Service, request.Method)(request.Payload, context);
            // With a deadline, stop waiting when it passes even if the handler ignores its token.
            var result = deadline is null
                ? await invoke.ConfigureAwait(false)
                : await invoke.AsTask().WaitAsync(callToken).ConfigureAwait(false);
            return EncodeSuccess(streamId, result);
        }
        catch (OperationCanceledException) when (callToken.IsCancellationRequested)
        {
            if (closing.IsCancellationRequested) return null; // connection gone
            return Envelope.EncodeError(streamId, TtrpcStatusCode.DeadlineExceeded,
                $"{request.Service}/{request.Method}: deadline exceeded after {timeout}");
        }
        catch (TtrpcException e)
        {
            return Envelope.EncodeError(streamId, e.Code, e.Message);
        }
        catch (Exception e)
        {
            Log($"{request.Service}/{request.Method} failed: {e}");
            return Envelope.EncodeError(streamId, TtrpcStatusCode.Unknown, e.Message);
        }
    }

    private PooledFrame EncodeSuccess(uint streamId, IMessage? result)
    {
        try
        {
            return Envelope.EncodeSuccess(streamId, result, _options.MaxMessageSize);
        }
        catch (TtrpcException e) // the result is bigger than the peer may accept
        {
            return Envelope.EncodeError(streamId, e.Code, e.Message);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendErrorAsync(uint streamId, TtrpcStatusCode code, string message)
    {
        using var reply = Envelope.EncodeError(streamId, code, message);
        await _writer.WriteAsync(reply.Memory, _closing.Token).ConfigureAwait(false);
    }

    private static IReadOnlyList<KeyValuePair<string, string>> MetadataOf(Request request)
    {
        if (request.Metadata.Count == 0) return [];
        var pairs = new KeyValuePair<string, string>[request.Metadata.Count];
        for (int i = 0; i < pairs.Length; i++) pairs[i] = new(request.Metadata[i].Key, request.Metadata[i].Value);
        return pairs;
    }

    private void Log(string message)
    {
        try { _options.Log?.Invoke($"ttrpc server connection {_id}: {message}"); }
        catch { /* a failing log sink must not take the connection down */ }
    }
}
