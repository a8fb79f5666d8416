using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>A unix-socket peer that writes whatever bytes a test wants and reads raw ttrpc frames back.</summary>
internal sealed class RawConnection : IDisposable
{
    private RawConnection(Socket socket) => Socket = socket;

    public Socket Socket { get; }

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
                // The listen backlog is full (tests open connections in bursts): back off as a client would.
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

    public async Task SendAsync(byte[] bytes) => await Socket.SendAsync(bytes, SocketFlags.None);

    public Task SendRequestAsync(uint streamId, string service, string method, IMessage request) =>
        SendAsync(TtrpcFrame.EncodeRequest(streamId, service, method, request));

    /// <summary>The next frame; null if the shim closed the connection. Throws TimeoutException if nothing came.</summary>
    public async Task<(TtrpcFrameHeader Header, byte[] Payload)?> ReadFrameAsync(TimeSpan timeout)
    {
        using var bound = new CancellationTokenSource(timeout);
        try
        {
            return await TtrpcFrame.ReadAsync(Socket, bound.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no frame within {timeout}");
        }
    }

    public async Task<(uint StreamId, Response Response)> ReadResponseAsync(TimeSpan timeout)
    {
        var frame = await ReadFrameAsync(timeout) ?? throw new EndOfStreamException("the shim closed the connection");
        if (frame.Header.Type != TtrpcMessageType.Response)
            throw new InvalidDataException($"expected a response frame, got {frame.Header.Type}");
        return (frame.Header.StreamId, TtrpcFrame.DecodeResponse(frame.Payload));
    }

    /// <summary>True when the shim closes (EOF or reset) within <paramref name="timeout"/>; false if it stays open.</summary>
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
