using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.TestSupport.Ttrpc;

/// <summary>
/// Whole ttrpc frames built and read by hand, for tests that speak (or break) the wire protocol: the header codec is
/// the product's (<see cref="TtrpcFrame"/>), everything else here only tests need, so it lives with them.
/// </summary>
public static class TtrpcWire
{
    /// <summary>Header plus payload in one new array.</summary>
    public static byte[] Encode(uint streamId, TtrpcMessageType type, ReadOnlySpan<byte> payload, byte flags = 0)
    {
        var frame = new byte[TtrpcFrame.HeaderSize + payload.Length];
        TtrpcFrame.WriteHeader(frame, new TtrpcFrameHeader((uint)payload.Length, streamId, type, flags));
        payload.CopyTo(frame.AsSpan(TtrpcFrame.HeaderSize));
        return frame;
    }

    /// <summary>
    /// Decodes the first complete frame in <paramref name="buffer"/>. False when the buffer holds less than one
    /// whole frame; <paramref name="consumed"/> is then 0.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> buffer, out TtrpcFrameHeader header, out ReadOnlySpan<byte> payload,
        out int consumed)
    {
        header = default;
        payload = default;
        consumed = 0;
        if (buffer.Length < TtrpcFrame.HeaderSize) return false;
        header = TtrpcFrame.ReadHeader(buffer);
        if ((ulong)buffer.Length - TtrpcFrame.HeaderSize < header.Length) return false;
        payload = buffer.Slice(TtrpcFrame.HeaderSize, (int)header.Length);
        consumed = TtrpcFrame.HeaderSize + (int)header.Length;
        return true;
    }

    /// <summary>A complete request frame, as a ttrpc client would send it.</summary>
    public static byte[] EncodeRequest(uint streamId, string service, string method, IMessage request, TimeSpan? timeout = null)
    {
        var envelope = new Request { Service = service, Method = method, Payload = request.ToByteString() };
        if (timeout is { } t) envelope.TimeoutNano = Math.Max(1, t.Ticks * 100); // 0 would mean "no deadline"
        return Encode(streamId, TtrpcMessageType.Request, envelope.ToByteArray());
    }

    /// <summary>Decodes the envelope of a response frame's payload.</summary>
    public static Response DecodeResponse(ReadOnlySpan<byte> payload) => Response.Parser.ParseFrom(payload);

    /// <summary>
    /// Reads one whole frame from a connected socket (not pooled). Null when the peer closed the connection before a
    /// header started; EndOfStreamException when it closed in the middle of a frame.
    /// </summary>
    public static async Task<(TtrpcFrameHeader Header, byte[] Payload)?> ReadAsync(Socket socket, CancellationToken ct = default)
    {
        var head = new byte[TtrpcFrame.HeaderSize];
        int got = await ReceiveFullyAsync(socket, head, ct).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < TtrpcFrame.HeaderSize) throw new EndOfStreamException("connection closed inside a ttrpc header");
        var header = TtrpcFrame.ReadHeader(head);
        var payload = new byte[header.Length];
        if (await ReceiveFullyAsync(socket, payload, ct).ConfigureAwait(false) < payload.Length)
            throw new EndOfStreamException("connection closed inside a ttrpc payload");
        return (header, payload);
    }

    private static async Task<int> ReceiveFullyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer[total..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
