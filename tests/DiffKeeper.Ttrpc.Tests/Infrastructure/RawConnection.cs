using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>A plain socket for speaking (or breaking) the wire protocol by hand.</summary>
public sealed class RawConnection : IDisposable
{
    private static readonly TimeSpan ReadLimit = TimeSpan.FromSeconds(10);

    private RawConnection(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    public static async Task<RawConnection> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return new RawConnection(socket);
    }

    public async Task SendAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length) sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
    }

    public Task SendRequestAsync(uint streamId, string method, IMessage request, TimeSpan? timeout = null) =>
        SendAsync(TtrpcFrame.EncodeRequest(streamId, TestService.Name, method, request, timeout));

    /// <summary>The next frame, or null if the server closed the connection.</summary>
    public async Task<(TtrpcFrameHeader Header, byte[] Payload)?> ReadFrameAsync()
    {
        using var limit = new CancellationTokenSource(ReadLimit);
        return await TtrpcFrame.ReadAsync(Socket, limit.Token);
    }

    public async Task<(TtrpcFrameHeader Header, Response Response)> ReadResponseAsync()
    {
        var frame = await ReadFrameAsync() ?? throw new EndOfStreamException("server closed the connection");
        Assert.Equal(TtrpcMessageType.Response, frame.Header.Type);
        return (frame.Header, TtrpcFrame.DecodeResponse(frame.Payload));
    }

    /// <summary>Exactly <paramref name="count"/> bytes as they come off the wire.</summary>
    public async Task<byte[]> ReadBytesAsync(int count)
    {
        using var limit = new CancellationTokenSource(ReadLimit);
        var buffer = new byte[count];
        int got = 0;
        while (got < count)
        {
            int n = await Socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, limit.Token);
            if (n == 0) throw new EndOfStreamException();
            got += n;
        }
        return buffer;
    }

    public void Dispose() => Socket.Dispose();
}
