using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Chunking;

/// <summary>
/// Where stored chunk values are read from: a live store's chunk family, or a packed recording read in place.
/// Every reader of chunk bytes (content streams, delta bases, pack writing, doctor) goes through one of these;
/// nothing else knows which it is.
/// </summary>
internal interface IChunkSource
{
    /// <summary>Hands the stored value (codec byte, raw length, payload) of a chunk to <paramref name="use"/>; false when absent.</summary>
    bool TryUseChunk<TState>(Hash256 h, ref TState state, SpanUser<TState> use);

    /// <summary>True when the chunk is present (a cheap check: a Bloom filter, then an index lookup).</summary>
    bool HasChunk(Hash256 h);
}

/// <summary>Chunks of a live store: the value is the chunk family's value (a blob file read).</summary>
internal sealed class StoreChunkSource(RocksDb db, ColumnFamily chunks) : IChunkSource
{
    /// <summary>Most chunks will be read (a full export): the table blocks looked up are cached, not read again each time.</summary>
    public bool Bulk { get; set; }

    public bool TryUseChunk<TState>(Hash256 h, ref TState state, SpanUser<TState> use)
    {
        Span<byte> key = stackalloc byte[Hash256.Size];
        h.CopyTo(key);
        return db.TryUse(key, chunks, ref state, use, Bulk);
    }

    public bool HasChunk(Hash256 h)
    {
        Span<byte> key = stackalloc byte[Hash256.Size];
        h.CopyTo(key);
        return db.HasKey(key, chunks);
    }
}

/// <summary>
/// Chunks of a packed recording read in place: the temporary store's chunk family holds, instead of each stored
/// value, where that value is in the packed file (<see cref="LocationSize"/> bytes: u64 LE offset, i32 LE length),
/// and the value is read from the file (see <see cref="Pack.PackReader"/>).
/// </summary>
internal sealed class PackedChunkSource : IChunkSource, IDisposable
{
    /// <summary>Length of a chunk location: u64 LE offset, i32 LE length.</summary>
    public const int LocationSize = 12;
    private const int MaxStoredChunk = 1 << 20;

    private readonly RocksDb _db;
    private readonly ColumnFamily _locations;
    private readonly SafeFileHandle _file;
    private readonly long _fileLength;

    public PackedChunkSource(RocksDb db, ColumnFamily locations, SafeFileHandle file)
    {
        _db = db;
        _locations = locations;
        _file = file;
        _fileLength = RandomAccess.GetLength(file);
    }

    public static void EncodeLocation(Span<byte> location, long offset, int length)
    {
        BinaryPrimitives.WriteInt64LittleEndian(location, offset);
        BinaryPrimitives.WriteInt32LittleEndian(location[8..], length);
    }

    public bool HasChunk(Hash256 h)
    {
        Span<byte> key = stackalloc byte[Hash256.Size];
        h.CopyTo(key);
        return _db.HasKey(key, _locations);
    }

    public bool TryUseChunk<TState>(Hash256 h, ref TState state, SpanUser<TState> use)
    {
        Span<byte> key = stackalloc byte[Hash256.Size];
        h.CopyTo(key);
        var location = _db.Get(key, _locations);
        if (location == null) return false;
        long offset = location.Length == LocationSize ? BinaryPrimitives.ReadInt64LittleEndian(location) : -1;
        int length = location.Length == LocationSize ? BinaryPrimitives.ReadInt32LittleEndian(location.AsSpan(8)) : -1;
        if (offset < 0 || length <= 0 || length > MaxStoredChunk || offset > _fileLength - length)
            throw new CorruptDataException($"chunk {h} has a bad location in the packed file");
        var buf = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int n = 0;
            while (n < length)
            {
                int r = RandomAccess.Read(_file, buf.AsSpan(n, length - n), offset + n);
                if (r <= 0) throw new CorruptDataException($"chunk {h}: the packed file is shorter than when it was opened");
                n += r;
            }
            use(buf.AsSpan(0, length), ref state);
            return true;
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
    }

    public void Dispose() => _file.Dispose();
}
