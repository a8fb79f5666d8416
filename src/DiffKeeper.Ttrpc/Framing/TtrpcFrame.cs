using System.Buffers.Binary;

namespace DiffKeeper.Ttrpc.Framing;

/// <summary>
/// The ttrpc frame header: 10 bytes (payload length u32 BE, stream id u32 BE, type, flags). The helpers that build
/// and read whole frames by hand live with the tests (tests/DiffKeeper.TestSupport/Ttrpc).
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
}
