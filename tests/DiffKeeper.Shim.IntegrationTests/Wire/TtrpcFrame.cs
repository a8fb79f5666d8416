using System.Buffers.Binary;

namespace DiffKeeper.Shim.IntegrationTests.Wire;

/// <summary>
/// A ttrpc frame: 10-byte header (length u32 BE, stream id u32 BE, type, flags) and payload.
/// Type 1 = request, 2 = response, 3 = data.
/// </summary>
public sealed record TtrpcFrame(uint StreamId, byte Type, byte Flags, byte[] Payload)
{
    public const byte Request = 1;
    public const byte Response = 2;
    public const int HeaderSize = 10;

    public byte[] Encode()
    {
        var bytes = new byte[HeaderSize + Payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)Payload.Length);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), StreamId);
        bytes[8] = Type;
        bytes[9] = Flags;
        Payload.CopyTo(bytes, HeaderSize);
        return bytes;
    }

    /// <summary>Reads one frame, or null at a clean end of stream.</summary>
    public static async Task<TtrpcFrame?> ReadAsync(Stream stream, CancellationToken ct = default)
    {
        var header = new byte[HeaderSize];
        if (!await ReadExactlyOrEof(stream, header, ct)) return null;
        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length > 4 << 20) throw new InvalidDataException($"frame of {length} bytes exceeds ttrpc's 4 MiB limit");
        var payload = new byte[length];
        if (length > 0 && !await ReadExactlyOrEof(stream, payload, ct)) throw new EndOfStreamException("truncated ttrpc frame");
        return new TtrpcFrame(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), header[8], header[9], payload);
    }

    private static async Task<bool> ReadExactlyOrEof(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0) return read == 0 ? false : throw new EndOfStreamException("connection closed mid-frame");
            read += n;
        }
        return true;
    }
}

/// <summary>A decoded ttrpc Request: service 1, method 2, payload 3, timeout_nano 4, metadata 5 (KeyValue key 1, value 2).</summary>
public sealed record TtrpcRequest(string Service, string Method, byte[] Payload, long TimeoutNano, IReadOnlyList<KeyValuePair<string, string>> Metadata)
{
    public static TtrpcRequest Decode(byte[] bytes)
    {
        var f = ProtoReader.Parse(bytes);
        var metadata = f.Where(x => x.Number == 5).Select(x =>
        {
            var kv = ProtoReader.Parse(x.Bytes);
            return new KeyValuePair<string, string>(kv.First(1)?.String ?? "", kv.First(2)?.String ?? "");
        }).ToList();
        return new TtrpcRequest(f.First(1)?.String ?? "", f.First(2)?.String ?? "", f.First(3)?.Bytes.ToArray() ?? Array.Empty<byte>(),
            (long)(f.First(4)?.Varint ?? 0), metadata);
    }

    public byte[] Encode()
    {
        var w = new ProtoWriter().String(1, Service).String(2, Method).Bytes(3, Payload);
        if (TimeoutNano != 0) w.Varint(4, (ulong)TimeoutNano);
        foreach (var (k, v) in Metadata) w.Message(5, new ProtoWriter().String(1, k).String(2, v));
        return w.ToArray();
    }
}

/// <summary>A decoded ttrpc Response: status 1 (google.rpc.Status code 1, message 2), payload 2.</summary>
public sealed record TtrpcResponse(int StatusCode, string StatusMessage, byte[] Payload, bool HasStatus)
{
    public static TtrpcResponse Decode(byte[] bytes)
    {
        var f = ProtoReader.Parse(bytes);
        var status = f.First(1);
        var code = 0;
        var message = "";
        if (status is { } s)
        {
            var sf = ProtoReader.Parse(s.Bytes);
            code = (int)(sf.First(1)?.Varint ?? 0);
            message = sf.First(2)?.String ?? "";
        }
        return new TtrpcResponse(code, message, f.First(2)?.Bytes.ToArray() ?? Array.Empty<byte>(), status != null);
    }
}
