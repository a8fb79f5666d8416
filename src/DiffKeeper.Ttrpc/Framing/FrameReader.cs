using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace DiffKeeper.Ttrpc.Framing;

/// <summary>
/// Reads frames from a socket through one pooled receive buffer, so a run of small frames costs one receive
/// call rather than two per frame. Payloads go into buffers the caller rents; big ones bypass the receive buffer.
/// The async methods use pooled state machines: a read loop waits on nearly every frame and would otherwise
/// allocate each time. Optionally a watchdog closes the socket when a frame, once begun, does not complete in
/// time: a peer that sends half a frame and then goes quiet would otherwise hold the connection forever.
/// </summary>
internal sealed class FrameReader : IDisposable
{
    private const int ReceiveBufferSize = 64 * 1024;

    private readonly Socket _socket;
    private readonly Timer? _watchdog;
    private readonly TimeSpan _incompleteFrameTimeout;
    private bool _watchdogArmed;
    private volatile bool _timedOut;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
    private int _start; // first unread byte in _buffer
    private int _end;   // one past the last received byte

    /// <param name="incompleteFrameTimeout">How long a started frame may take to arrive completely; null = forever.</param>
    public FrameReader(Socket socket, TimeSpan? incompleteFrameTimeout = null)
    {
        _socket = socket;
        if (incompleteFrameTimeout is { } timeout && timeout > TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            _incompleteFrameTimeout = timeout;
            _watchdog = new Timer(static state => ((FrameReader)state!).OnFrameStalled(), this, Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>True once the watchdog closed the socket because a frame stayed incomplete.</summary>
    public bool TimedOut => _timedOut;

    private int Buffered => _end - _start;

    /// <summary>
    /// The next header, or null if the peer closed the connection cleanly between frames.
    /// Throws EndOfStreamException if it closed inside a header.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<TtrpcFrameHeader?> ReadHeaderAsync(CancellationToken ct)
    {
        while (Buffered < TtrpcFrame.HeaderSize)
        {
            if (Buffered > 0) ArmWatchdog();
            if (!await FillAsync(ct).ConfigureAwait(false))
            {
                if (Buffered == 0) return null;
                throw new EndOfStreamException($"connection closed after {Buffered} of {TtrpcFrame.HeaderSize} header bytes");
            }
        }
        var header = TtrpcFrame.ReadHeader(_buffer.AsSpan(_start, TtrpcFrame.HeaderSize));
        _start += TtrpcFrame.HeaderSize;
        ArmWatchdog(); // until the payload has been read or skipped
        return header;
    }

    /// <summary>Fills <paramref name="destination"/> completely; EndOfStreamException if the peer closes first.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadPayloadAsync(Memory<byte> destination, CancellationToken ct)
    {
        int copied = TakeBuffered(destination.Span);
        destination = destination[copied..];
        while (destination.Length > 0)
        {
            if (destination.Length >= _buffer.Length)
            {
                // Large payload: receive straight into the destination, skipping a copy.
                int n = await _socket.ReceiveAsync(destination, SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0) throw HalfPayload(destination.Length);
                destination = destination[n..];
                continue;
            }
            if (!await FillAsync(ct).ConfigureAwait(false)) throw HalfPayload(destination.Length);
            destination = destination[TakeBuffered(destination.Span)..];
        }
        DisarmWatchdog();
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes (the payload of a frame we refuse).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SkipAsync(long count, CancellationToken ct)
    {
        while (count > 0)
        {
            if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) throw HalfPayload(count);
            int n = (int)Math.Min(count, Buffered);
            _start += n;
            count -= n;
        }
        DisarmWatchdog();
    }

    private int TakeBuffered(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, Buffered);
        _buffer.AsSpan(_start, n).CopyTo(destination);
        _start += n;
        return n;
    }

    /// <summary>Receives more bytes after what is buffered. False at end of stream.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0 && _end == _buffer.Length)
        {
            // Move the unread tail to the front to make room; at most one header's worth in practice.
            _buffer.AsSpan(_start, Buffered).CopyTo(_buffer);
            _end = Buffered;
            _start = 0;
        }
        int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct).ConfigureAwait(false);
        _end += n;
        return n > 0;
    }

    private void ArmWatchdog()
    {
        if (_watchdog is null || _watchdogArmed) return;
        _watchdogArmed = true;
        _watchdog.Change(_incompleteFrameTimeout, Timeout.InfiniteTimeSpan);
    }

    private void DisarmWatchdog()
    {
        if (!_watchdogArmed) return;
        _watchdogArmed = false;
        _watchdog!.Change(Timeout.Infinite, Timeout.Infinite);
    }

    private void OnFrameStalled()
    {
        _timedOut = true;
        _socket.Dispose(); // the pending receive fails and the owner's read loop ends
    }

    private static EndOfStreamException HalfPayload(long missing) =>
        new($"connection closed with {missing} payload bytes still expected");

    public void Dispose()
    {
        _watchdog?.Dispose();
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
