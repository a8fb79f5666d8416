using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.TestSupport.Ttrpc;

/// <summary>
/// A plain unix-socket peer for speaking (or breaking) ttrpc by hand: writes whatever bytes a test wants and reads
/// raw frames back. Reads wait at most <see cref="DefaultPatience"/> unless told otherwise.
/// </summary>
public sealed class RawConnection : IDisposable
{
    public static readonly TimeSpan DefaultPatience = TimeSpan.FromSeconds(10);

    private RawConnection(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    /// <summary>Connects, backing off while the listen backlog is full (tests open connections in bursts).</summary>
    public static async Task<RawConnection> OpenAsync(string socketPath, int? receiveBuffer = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            if (receiveBuffer is { } size) socket.ReceiveBufferSize = size;
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
                return new RawConnection(socket);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock && attempt < 200)
            {
                socket.Dispose();
                await Task.Delay(10);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    public async Task SendAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length) sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
    }

    public Task SendRequestAsync(uint streamId, string service, string method, IMessage request, TimeSpan? timeout = null) =>
        SendAsync(TtrpcWire.EncodeRequest(streamId, service, method, request, timeout));

    /// <summary>The next frame; null if the peer closed the connection. Throws TimeoutException if nothing came.</summary>
    public async Task<(TtrpcFrameHeader Header, byte[] Payload)?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        var patience = timeout ?? DefaultPatience;
        using var bound = new CancellationTokenSource(patience);
        try
        {
            return await TtrpcWire.ReadAsync(Socket, bound.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no frame within {patience}");
        }
    }

    /// <summary>The next frame, which must be a response.</summary>
    public async Task<(TtrpcFrameHeader Header, Response Response)> ReadResponseAsync(TimeSpan? timeout = null)
    {
        var frame = await ReadFrameAsync(timeout) ?? throw new EndOfStreamException("the peer closed the connection");
        if (frame.Header.Type != TtrpcMessageType.Response)
            throw new InvalidDataException($"expected a response frame, got {frame.Header.Type}");
        return (frame.Header, TtrpcWire.DecodeResponse(frame.Payload));
    }

    /// <summary>Exactly <paramref name="count"/> bytes as they come off the wire.</summary>
    public async Task<byte[]> ReadBytesAsync(int count, TimeSpan? timeout = null)
    {
        using var bound = new CancellationTokenSource(timeout ?? DefaultPatience);
        var buffer = new byte[count];
        int got = 0;
        while (got < count)
        {
            int n = await Socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, bound.Token);
            if (n == 0) throw new EndOfStreamException();
            got += n;
        }
        return buffer;
    }

    /// <summary>True when the peer closes (EOF or reset) within <paramref name="timeout"/>; false if it stays open.</summary>
    public async Task<bool> IsClosedByPeerAsync(TimeSpan timeout)
    {
        var buffer = new byte[4096];
        using var bound = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, bound.Token);
                if (n == 0) return true;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => Socket.Dispose();
}
