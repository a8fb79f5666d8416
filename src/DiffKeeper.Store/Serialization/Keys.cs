using System.Buffers.Binary;

namespace DiffKeeper.Store.Serialization;

/// <summary>
/// Key layouts (all big-endian so that RocksDB's bytewise order is the order we want):
///   recordings: rec(8)
///   versions:   rec(8) path 0x00 time(8)   — a path's versions are adjacent and sorted by time
///   events:     rec(8) time(8) seq(8)       — a recording's events in time order
///   chunks:     sha256(32)
/// A path never contains NUL, so 0x00 ends it unambiguously. Times are signed ns with the sign bit flipped.
/// </summary>
internal static class Keys
{
    public static ulong TimeBits(long t) => (ulong)t ^ 0x8000_0000_0000_0000UL;
    public static long TimeFromBits(ulong b) => (long)(b ^ 0x8000_0000_0000_0000UL);

    public static byte[] Recording(ulong rec)
    {
        var k = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(k, rec);
        return k;
    }

    public static ulong RecordingOf(ReadOnlySpan<byte> key) => BinaryPrimitives.ReadUInt64BigEndian(key);

    public static byte[] Version(ulong rec, ReadOnlySpan<byte> path, long time)
    {
        var k = new byte[8 + path.Length + 1 + 8];
        BinaryPrimitives.WriteUInt64BigEndian(k, rec);
        path.CopyTo(k.AsSpan(8));
        k[8 + path.Length] = 0;
        BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(9 + path.Length), TimeBits(time));
        return k;
    }

    /// <summary>Prefix of every version of one path: rec path 0x00.</summary>
    public static byte[] VersionPathPrefix(ulong rec, ReadOnlySpan<byte> path)
    {
        var k = new byte[8 + path.Length + 1];
        BinaryPrimitives.WriteUInt64BigEndian(k, rec);
        path.CopyTo(k.AsSpan(8));
        return k;
    }

    /// <summary>Prefix of every path below a directory: rec dir '/' (or rec for the root).</summary>
    public static byte[] VersionSubtreePrefix(ulong rec, ReadOnlySpan<byte> dir)
    {
        if (dir.Length == 0) return Recording(rec);
        var k = new byte[8 + dir.Length + 1];
        BinaryPrimitives.WriteUInt64BigEndian(k, rec);
        dir.CopyTo(k.AsSpan(8));
        k[8 + dir.Length] = (byte)'/';
        return k;
    }

    public static (byte[] path, long time) SplitVersion(ReadOnlySpan<byte> key)
    {
        if (key.Length < 17 || key[^9] != 0) throw new CorruptDataException("bad version key");
        var path = key.Slice(8, key.Length - 17).ToArray();
        return (path, TimeFromBits(BinaryPrimitives.ReadUInt64BigEndian(key[^8..])));
    }

    public static ReadOnlySpan<byte> VersionKeyPath(ReadOnlySpan<byte> key) => key.Slice(8, key.Length - 17);
    public static long VersionKeyTime(ReadOnlySpan<byte> key) => TimeFromBits(BinaryPrimitives.ReadUInt64BigEndian(key[^8..]));

    public static byte[] Event(ulong rec, long time, ulong seq)
    {
        var k = new byte[24];
        BinaryPrimitives.WriteUInt64BigEndian(k, rec);
        BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(8), TimeBits(time));
        BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(16), seq);
        return k;
    }

    /// <summary>The smallest key greater than every key starting with <paramref name="prefix"/> (null: none).</summary>
    public static byte[]? PrefixEnd(ReadOnlySpan<byte> prefix)
    {
        var k = prefix.ToArray();
        for (int i = k.Length - 1; i >= 0; i--)
        {
            if (k[i] != 0xff) { k[i]++; return k.AsSpan(0, i + 1).ToArray(); }
        }
        return null;
    }
}
