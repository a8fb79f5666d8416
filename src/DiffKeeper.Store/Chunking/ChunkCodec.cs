using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Rocks;
using static DiffKeeper.Store.Chunking.NativeZstd;

namespace DiffKeeper.Store.Chunking;

/// <summary>
/// Stored chunk value (docs/store.md): 1 byte codec + 4 bytes raw length (LE) + payload.
/// <list type="bullet">
/// <item>codec 0 raw: payload = the raw bytes;</item>
/// <item>codec 1 zstd: payload = one zstd frame;</item>
/// <item>codec 2 delta: payload = depth (1 byte, 1..<see cref="MaxDeltaDepth"/>) + the base chunk's SHA-256 (32)
/// + one zstd frame compressed with the base's raw bytes as a raw-content prefix (<c>ZSTD_CCtx_refPrefix</c>).</item>
/// </list>
/// One instance per thread: it keeps zstd contexts and buffers for reuse.
/// </summary>
internal sealed unsafe class ChunkCodec : IDisposable
{
    public const byte Raw = 0, Zstd = 1, Delta = 2;
    public const int HeaderSize = 5;
    /// <summary>Codec, raw length, depth, base hash.</summary>
    public const int DeltaHeaderSize = HeaderSize + 1 + Hash256.Size;
    /// <summary>
    /// A read resolves at most this many deltas for one chunk (a chunk at depth d needs d + 1 reads and d + 1
    /// decompressions); a chunk whose base is already this deep is stored whole, which starts a new chain.
    /// </summary>
    public const int MaxDeltaDepth = 4;
    /// <summary>
    /// Whole chunks (the ingest hot path). Measured (docs/store.md): level 3 cost 9–17 % more CPU on workload 1 and
    /// saved 0.08 % of its bytes; on text (workload 4) it saved 4 %. The w1 ingest margin against restic is thinner
    /// than that, so level 1.
    /// </summary>
    public const int DefaultLevel = 1;
    /// <summary>
    /// Deltas: what a delta saves comes from the base, not the level (workload 6: 15.40 MB at level 1, 15.39 at 19;
    /// workload 4: −2.7 % at 19). Every chunk with a predecessor is tried, including a rewritten file's, so a
    /// slow level would cost on every rewrite for almost nothing.
    /// </summary>
    public const int DefaultDeltaLevel = 3;

    public int Level { get; init; } = DefaultLevel;
    public int DeltaLevel { get; init; } = DefaultDeltaLevel;

    // Native zstd contexts (see NativeZstd), created on first use: a reader never pays for a compression context.
    // Deltas use their own context: a prefix is a sticky parameter of the context that encodes it.
    private nint _cctx, _deltaCctx, _dctx;
    // Output and base buffers are rented on first use and returned at Dispose: a live ingest makes a codec per
    // captured file, and allocating (so zeroing) ~200 KB each time was 5 % of the daemon's CPU while a recorded
    // command created 3,000 small files (perf, docs/record.md).
    private byte[] _out = [], _deltaOut = [];
    /// <summary>One buffer per chain level for the raw bytes of a delta's base while it is resolved.</summary>
    private readonly byte[]?[] _bases = new byte[]?[MaxDeltaDepth];

    /// <summary>A pooled buffer of at least <paramref name="size"/> bytes in place of <paramref name="old"/> (returned).</summary>
    private static byte[] Regrow(byte[] old, int size)
    {
        if (old.Length > 0) ArrayPool<byte>.Shared.Return(old);
        return ArrayPool<byte>.Shared.Rent(size);
    }

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

    /// <summary>How many deltas a read of this stored value resolves (0 for a whole chunk).</summary>
    public static int DepthOf(ReadOnlySpan<byte> stored) =>
        stored.Length >= DeltaHeaderSize && stored[0] == Delta ? stored[HeaderSize] : 0;

    /// <summary>The base a delta chunk needs; false for a whole chunk.</summary>
    public static bool TryGetBase(ReadOnlySpan<byte> stored, out Hash256 baseHash)
    {
        baseHash = default;
        if (stored.Length < DeltaHeaderSize || stored[0] != Delta) return false;
        baseHash = new Hash256(stored.Slice(HeaderSize + 1, Hash256.Size));
        return true;
    }

    /// <summary>Encodes a whole chunk for storage; the span is valid until the next call.</summary>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<byte> raw)
    {
        int bound = HeaderSize + (int)ZSTD_compressBound((nuint)raw.Length);
        if (_out.Length < bound) _out = Regrow(_out, bound);
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
            _out[0] = Raw; // bound >= HeaderSize + raw.Length: it fits
            raw.CopyTo(_out.AsSpan(HeaderSize));
            return _out.AsSpan(0, HeaderSize + raw.Length);
        }
        _out[0] = Zstd;
        return _out.AsSpan(0, HeaderSize + n);
    }

    /// <summary>
    /// Encodes a chunk that replaces <paramref name="baseRaw"/> (a chunk of the file's previous version, stored at
    /// <paramref name="baseDepth"/>): as a delta against it when that is clearly smaller (at most 3/4 of the whole
    /// chunk's encoding) and the chain stays within <see cref="MaxDeltaDepth"/>, else whole. A delta costs every
    /// later read one more lookup and decompression, so a marginal saving is not worth it.
    /// </summary>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<byte> raw, Hash256 baseHash, ReadOnlySpan<byte> baseRaw, int baseDepth, out bool delta)
    {
        delta = false;
        if (baseDepth >= MaxDeltaDepth || baseRaw.IsEmpty) return Encode(raw);
        int bound = DeltaHeaderSize + (int)ZSTD_compressBound((nuint)raw.Length);
        if (_deltaOut.Length < bound) _deltaOut = Regrow(_deltaOut, bound);
        if (_deltaCctx == 0 && (_deltaCctx = ZSTD_createCCtx()) == 0) throw new OutOfMemoryException("zstd: no compression context");
        nuint r;
        fixed (byte* src = raw)
        fixed (byte* pre = baseRaw)
        fixed (byte* dst = &_deltaOut[DeltaHeaderSize])
        {
            ZSTD_CCtx_reset(_deltaCctx, ZSTD_reset_session_and_parameters);
            r = ZSTD_CCtx_setParameter(_deltaCctx, ZSTD_c_compressionLevel, DeltaLevel);
            if (ZSTD_isError(r) == 0) r = ZSTD_CCtx_refPrefix(_deltaCctx, pre, (nuint)baseRaw.Length);
            if (ZSTD_isError(r) == 0) r = ZSTD_compress2(_deltaCctx, dst, (nuint)(_deltaOut.Length - DeltaHeaderSize), src, (nuint)raw.Length);
        }
        if (ZSTD_isError(r) != 0) return Encode(raw);
        int n = DeltaHeaderSize + (int)r;
        // Most replaced chunks differ from their base in a few bytes: a delta of under 1/16 of the raw size is
        // smaller than any whole encoding of real data, so the second compression is skipped.
        if (n > raw.Length / 16)
        {
            var whole = Encode(raw);
            if (n > whole.Length - whole.Length / 4) return whole;
        }
        _deltaOut[0] = Delta;
        BinaryPrimitives.WriteInt32LittleEndian(_deltaOut.AsSpan(1), raw.Length);
        _deltaOut[HeaderSize] = (byte)(baseDepth + 1);
        baseHash.CopyTo(_deltaOut.AsSpan(HeaderSize + 1));
        delta = true;
        return _deltaOut.AsSpan(0, n);
    }

    /// <summary>
    /// Decodes a stored chunk into <paramref name="dest"/> and verifies its SHA-256. A delta's base is read from
    /// <paramref name="bases"/> and verified too; a missing base, a chain deeper than <see cref="MaxDeltaDepth"/>
    /// or a delta with no source to resolve it is <see cref="CorruptDataException"/>.
    /// </summary>
    /// <returns>The raw length.</returns>
    public int DecodeVerified(Hash256 expected, ReadOnlySpan<byte> stored, Span<byte> dest, IChunkSource? bases = null) =>
        Decode(expected, stored, dest, bases, 0);

    private int Decode(Hash256 expected, ReadOnlySpan<byte> stored, Span<byte> dest, IChunkSource? bases, int level)
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
                n = Decompress(expected, payload, dest[..rawLen], default);
                break;
            case Delta:
            {
                if (stored.Length < DeltaHeaderSize) throw new CorruptDataException($"chunk {expected} is truncated");
                // The depth byte is what the writer promised; the recursion is bounded by what a read resolves, so
                // a damaged depth or a cycle of deltas ends here too.
                if (level >= MaxDeltaDepth || stored[HeaderSize] == 0 || stored[HeaderSize] > MaxDeltaDepth)
                    throw new CorruptDataException($"chunk {expected} has a delta chain deeper than {MaxDeltaDepth}");
                var baseHash = new Hash256(stored.Slice(HeaderSize + 1, Hash256.Size));
                if (bases == null) throw new CorruptDataException($"chunk {expected} is a delta and its base {baseHash} cannot be read here");
                var baseBuf = _bases[level] ??= ArrayPool<byte>.Shared.Rent(FastCdc.DefaultMax);
                var st = (Codec: this, Hash: baseHash, Buf: baseBuf, Bases: bases, Level: level + 1, Length: 0);
                if (!bases.TryUseChunk(baseHash, ref st, static (value, ref s) => s.Length = s.Codec.Decode(s.Hash, value, s.Buf, s.Bases, s.Level)))
                    throw new CorruptDataException($"chunk {expected}: its delta base {baseHash} is missing");
                n = Decompress(expected, stored[DeltaHeaderSize..], dest[..rawLen], baseBuf.AsSpan(0, st.Length));
                break;
            }
            default:
                throw new CorruptDataException($"chunk {expected} has an unknown codec");
        }
        if (n != rawLen) throw new CorruptDataException($"chunk {expected} has a bad length");
        if (HashOf(dest[..n]) != expected) throw new CorruptDataException($"chunk {expected} fails its hash check");
        return n;
    }

    private int Decompress(Hash256 expected, ReadOnlySpan<byte> frame, Span<byte> dest, ReadOnlySpan<byte> prefix)
    {
        if (_dctx == 0 && (_dctx = ZSTD_createDCtx()) == 0) throw new OutOfMemoryException("zstd: no decompression context");
        nuint d;
        fixed (byte* src = frame)
        fixed (byte* dst = dest)
        fixed (byte* pre = prefix)
        {
            // refPrefix applies to the next frame only, so a whole chunk after a delta decodes without it.
            d = prefix.IsEmpty ? 0 : ZSTD_DCtx_refPrefix(_dctx, pre, (nuint)prefix.Length);
            if (ZSTD_isError(d) == 0) d = ZSTD_decompressDCtx(_dctx, dst, (nuint)dest.Length, src, (nuint)frame.Length);
        }
        if (ZSTD_isError(d) != 0) throw new CorruptDataException($"chunk {expected} does not decompress");
        return (int)d;
    }

    public void Dispose()
    {
        if (_out.Length > 0) ArrayPool<byte>.Shared.Return(_out);
        if (_deltaOut.Length > 0) ArrayPool<byte>.Shared.Return(_deltaOut);
        _out = _deltaOut = [];
        for (int i = 0; i < _bases.Length; i++)
        {
            if (_bases[i] is { } b) ArrayPool<byte>.Shared.Return(b);
            _bases[i] = null;
        }
        if (_cctx != 0) { ZSTD_freeCCtx(_cctx); _cctx = 0; }
        if (_deltaCctx != 0) { ZSTD_freeCCtx(_deltaCctx); _deltaCctx = 0; }
        if (_dctx != 0) { ZSTD_freeDCtx(_dctx); _dctx = 0; }
    }
}
