using System.Buffers.Binary;
using System.Security.Cryptography;
using DiffKeeper.Store.Model;
using static DiffKeeper.Store.Chunking.NativeZstd;

namespace DiffKeeper.Store.Chunking;

/// <summary>
/// Stored chunk value: 1 byte codec (0 raw, 1 zstd) + 4 bytes raw length (LE) + payload.
/// One instance per thread: it keeps a zstd context and buffers for reuse.
/// </summary>
public sealed unsafe class ChunkCodec : IDisposable
{
    public const byte Raw = 0, Zstd = 1;
    public const int HeaderSize = 5;
    public const int Level = 1; // DESIGN: compression is the bottleneck; level 1 ≈ 330 MB/s per core.

    // Native zstd contexts (see NativeZstd), created on first use: a reader never pays for a compression context.
    private nint _cctx, _dctx;
    private byte[] _out = new byte[HeaderSize + (int)ZSTD_compressBound((nuint)FastCdc.DefaultMax)];

    /// <summary>
    /// Bytes a process hashes with the managed SHA-256 before OpenSSL's takes over. Loading OpenSSL costs ~5 ms,
    /// a quarter of a `show`, which verifies a few KiB; ingests and exports hash gigabytes, where OpenSSL (SHA-NI)
    /// is ~7x faster. 256 KiB cost the managed code about as much as loading OpenSSL.
    /// </summary>
    internal const long ManagedHashBytes = 256 << 10;
    private static long s_managedBudget = ManagedHashBytes;

    public static Hash256 HashOf(ReadOnlySpan<byte> raw)
    {
        Span<byte> h = stackalloc byte[32];
        if (Volatile.Read(ref s_managedBudget) >= raw.Length && Interlocked.Add(ref s_managedBudget, -raw.Length) >= 0)
            Common.Hashing.Sha256.Hash(raw, h);
        else
            SHA256.HashData(raw, h);
        return new Hash256(h);
    }

    /// <summary>Encodes a chunk for storage; the span is valid until the next call.</summary>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<byte> raw)
    {
        int bound = HeaderSize + (int)ZSTD_compressBound((nuint)raw.Length);
        if (_out.Length < bound) _out = new byte[bound];
        if (_cctx == 0 && (_cctx = ZSTD_createCCtx()) == 0) throw new OutOfMemoryException("zstd: no compression context");
        nuint r;
        fixed (byte* src = raw)
        fixed (byte* dst = &_out[HeaderSize])
            r = ZSTD_compressCCtx(_cctx, dst, (nuint)(_out.Length - HeaderSize), src, (nuint)raw.Length, Level);
        // An error cannot happen with a bound-sized buffer; were it to, the chunk is simply stored raw.
        int n = ZSTD_isError(r) != 0 ? int.MaxValue : (int)r;
        BinaryPrimitives.WriteInt32LittleEndian(_out.AsSpan(1), raw.Length);
        // Incompressible data is stored raw: saves the decompression on every read.
        if (n >= raw.Length - raw.Length / 32)
        {
            _out[0] = Raw;
            if (_out.Length < HeaderSize + raw.Length) _out = new byte[HeaderSize + raw.Length];
            raw.CopyTo(_out.AsSpan(HeaderSize));
            return _out.AsSpan(0, HeaderSize + raw.Length);
        }
        _out[0] = Zstd;
        return _out.AsSpan(0, HeaderSize + n);
    }

    /// <summary>Decodes a stored chunk into <paramref name="dest"/> and verifies its SHA-256.</summary>
    /// <returns>The raw length.</returns>
    public int DecodeVerified(Hash256 expected, ReadOnlySpan<byte> stored, Span<byte> dest)
    {
        if (stored.Length < HeaderSize) throw new CorruptDataException($"chunk {expected} is truncated");
        int rawLen = BinaryPrimitives.ReadInt32LittleEndian(stored[1..]);
        if (rawLen < 0 || rawLen > dest.Length) throw new CorruptDataException($"chunk {expected} has a bad length");
        var payload = stored[HeaderSize..];
        int n;
        switch (stored[0])
        {
            case Raw:
                if (payload.Length != rawLen) throw new CorruptDataException($"chunk {expected} has a bad length");
                payload.CopyTo(dest);
                n = rawLen;
                break;
            case Zstd:
                if (_dctx == 0 && (_dctx = ZSTD_createDCtx()) == 0) throw new OutOfMemoryException("zstd: no decompression context");
                nuint d;
                fixed (byte* src = payload)
                fixed (byte* dst = dest)
                    d = ZSTD_decompressDCtx(_dctx, dst, (nuint)rawLen, src, (nuint)payload.Length);
                if (ZSTD_isError(d) != 0) throw new CorruptDataException($"chunk {expected} does not decompress");
                n = (int)d;
                if (n != rawLen) throw new CorruptDataException($"chunk {expected} has a bad length");
                break;
            default:
                throw new CorruptDataException($"chunk {expected} has an unknown codec");
        }
        if (HashOf(dest[..n]) != expected) throw new CorruptDataException($"chunk {expected} fails its hash check");
        return n;
    }

    public void Dispose()
    {
        if (_cctx != 0) { ZSTD_freeCCtx(_cctx); _cctx = 0; }
        if (_dctx != 0) { ZSTD_freeDCtx(_dctx); _dctx = 0; }
    }
}
