using System.Buffers.Binary;
using System.Net.Sockets;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc.Framing;

/// <summary>
/// Encoding and decoding of raw ttrpc frames. The server and client use the span-based header methods; the
/// byte[]/socket helpers exist so tests (ours and the shim's) can speak the wire protocol by hand.
/// </summary>
public static class TtrpcFrame
{
    public const int HeaderSize = 10;

    /// <summary>containerd's limit on a frame payload: 4 MiB.</summary>
    public const int DefaultMaxMessageSize = 4 << 20;

    public static void WriteHeader(Span<byte> destination, TtrpcFrameHeader header)
    {
        if (destination.Length < HeaderSize) throw new ArgumentException("a ttrpc header needs 10 bytes", nameof(destination));
        BinaryPrimitives.WriteUInt32BigEndian(destination, header.Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], header.StreamId);
        destination[8] = (byte)header.Type;
        destination[9] = header.Flags;
    }

    public static TtrpcFrameHeader ReadHeader(ReadOnlySpan<byte> source)
    {
        if (source.Length < HeaderSize) throw new ArgumentException("a ttrpc header needs 10 bytes", nameof(source));
        return new TtrpcFrameHeader(
            BinaryPrimitives.ReadUInt32BigEndian(source),
            BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            (TtrpcMessageType)source[8],
            source[9]);
    }

    /// <summary>Header plus payload in one new array.</summary>
    public static byte[] Encode(uint streamId, TtrpcMessageType type, ReadOnlySpan<byte> payload, byte flags = 0)
    {
        var frame = new byte[HeaderSize + payload.Length];
        WriteHeader(frame, new TtrpcFrameHeader((uint)payload.Length, streamId, type, flags));
        payload.CopyTo(frame.AsSpan(HeaderSize));
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
        if (buffer.Length < HeaderSize) return false;
        header = ReadHeader(buffer);
        if ((ulong)buffer.Length - HeaderSize < header.Length) return false;
        payload = buffer.Slice(HeaderSize, (int)header.Length);
        consumed = HeaderSize + (int)header.Length;
        return true;
    }

    /// <summary>A complete request frame, as a ttrpc client would send it.</summary>
    public static byte[] EncodeRequest(uint streamId, string service, string method, IMessage request,
        TimeSpan? timeout = null, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var envelope = Envelope.NewRequest(service, method, timeout, metadata);
        envelope.Payload = request.ToByteString();
        return Encode(streamId, TtrpcMessageType.Request, envelope.ToByteArray());
    }

    /// <summary>Decodes the envelope of a response frame's payload.</summary>
    public static Response DecodeResponse(ReadOnlySpan<byte> payload) => Response.Parser.ParseFrom(payload);

    /// <summary>
    /// Reads one whole frame from a connected socket (test helper; not pooled). Null when the peer closed the
    /// connection before a header started; EndOfStreamException when it closed in the middle of a frame.
    /// </summary>
    public static async Task<(TtrpcFrameHeader Header, byte[] Payload)?> ReadAsync(Socket socket, CancellationToken ct = default)
    {
        var head = new byte[HeaderSize];
        int got = await ReceiveFullyAsync(socket, head, ct).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < HeaderSize) throw new EndOfStreamException("connection closed inside a ttrpc header");
        var header = ReadHeader(head);
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
