using DiffKeeper.Store.Model;
using DiffKeeper.Store.Rocks;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Owns chunk durability: the only path from stored chunk bytes to the chunk family, and the only way a version
/// record reaches the store. The crash rule — no version names a chunk that a crash could lose — is kept here and
/// nowhere else: <see cref="WriteVersions"/> first makes every chunk written so far durable.
/// <para>
/// Chunks are written logged (the write-ahead log makes them durable at once: single-path captures) or unlogged (a
/// tree ingest: their bytes are written once, memtable then blob file, instead of twice — the log made a 1 GiB ingest
/// ~35 % slower). Unlogged chunks are durable only after a flush of the chunk family; a version record written
/// after it may name them. A kill -9 in between leaves chunks that nothing references (gc removes them), never a
/// version missing a chunk.
/// </para>
/// </summary>
internal sealed class ChunkSink : IDisposable
{
    private readonly RocksDb _db;
    private readonly ColumnFamily _chunks, _versions;
    private readonly WriteOptions _logged = new WriteOptions().SetSync(false);
    private readonly WriteOptions _unlogged = new WriteOptions().SetSync(false).DisableWal(true);
    /// <summary>Unlogged chunk writes begun, and how many of them a flush has made durable; the same in bytes.</summary>
    private long _unloggedWrites, _durableThrough, _unloggedBytes, _durableBytes;
    /// <summary>Unlogged writes hold it shared; a flush takes it exclusively to know which writes it covers.</summary>
    private readonly ReaderWriterLockSlim _unloggedGate = new();
    private readonly Lock _flushLock = new();

    public ChunkSink(RocksDb db, ColumnFamily chunks, ColumnFamily versions)
    {
        _db = db;
        _chunks = chunks;
        _versions = versions;
    }

    /// <summary>Records of one column family on their way to the store, counted (the key layout stays inside).</summary>
    public abstract class Batch(ColumnFamily cf) : IDisposable
    {
        internal readonly WriteBatch Writes = new();
        /// <summary>Encoded bytes held (stored chunk values; version keys and values).</summary>
        public long Bytes { get; private set; }
        public int Count { get; private set; }

        private protected void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long bytes)
        {
            Writes.Put(key, value, cf);
            Bytes += bytes;
            Count++;
        }

        public void Clear() { Writes.Clear(); Bytes = 0; Count = 0; }
        public void Dispose() => Writes.Dispose();
    }

    /// <summary>New chunks (stored values keyed by hash).</summary>
    public sealed class ChunkBatch(ColumnFamily cf) : Batch(cf)
    {
        public void Add(Hash256 h, ReadOnlySpan<byte> stored)
        {
            Span<byte> key = stackalloc byte[Hash256.Size];
            h.CopyTo(key);
            Put(key, stored, stored.Length);
        }
    }

    /// <summary>Version records.</summary>
    public sealed class VersionBatch(ColumnFamily cf) : Batch(cf)
    {
        public void Add(ulong rec, FileVersion v)
        {
            var key = Keys.Version(rec, v.Path, v.Time);
            var value = Records.Encode(v);
            Put(key, value, key.Length + value.Length);
        }
    }

    public ChunkBatch NewChunkBatch() => new(_chunks);
    public VersionBatch NewVersionBatch() => new(_versions);

    /// <summary>
    /// Writes chunks. Logged: durable when this returns (as durable as the log). Unlogged: present (readable, and
    /// counted) when this returns, durable after the next flush — which <see cref="WriteVersions"/> makes before any
    /// version that could name them.
    /// </summary>
    public void WriteChunks(ChunkBatch batch, bool logged)
    {
        if (batch.Count == 0) return;
        if (logged) { _db.Write(batch.Writes, _logged); return; }
        _unloggedGate.EnterReadLock();
        try
        {
            // Counted before the write: whoever can see one of these chunks also sees that it is not durable yet.
            Interlocked.Increment(ref _unloggedWrites);
            Interlocked.Add(ref _unloggedBytes, batch.Bytes);
            _db.Write(batch.Writes, _unlogged);
        }
        finally { _unloggedGate.ExitReadLock(); }
    }

    /// <summary>
    /// Writes version records (with the log). Each may name any chunk whose <see cref="WriteChunks"/> returned
    /// before this call (by this thread or another): those are made durable first.
    /// </summary>
    public void WriteVersions(VersionBatch batch)
    {
        if (batch.Count == 0) return;
        MakeChunksDurable();
        _db.Write(batch.Writes, _logged);
    }

    /// <summary>True while some unlogged chunk write is not yet covered by a flush (a kill -9 would lose it).</summary>
    public bool UnloggedChunksPending => Volatile.Read(ref _unloggedWrites) != Volatile.Read(ref _durableThrough);

    /// <summary>About how many bytes of unlogged chunks a crash would lose now.</summary>
    public long UnloggedChunkBytesPending => Volatile.Read(ref _unloggedBytes) - Volatile.Read(ref _durableBytes);

    /// <summary>
    /// Flushes the chunk family so that every unlogged chunk write finished so far is in table and blob files (a
    /// no-op when there is none). Costs one flush, whose time is the disk's (blob files are written with O_DIRECT).
    /// </summary>
    public void MakeChunksDurable()
    {
        if (!UnloggedChunksPending) return;
        lock (_flushLock)
        {
            long covered, coveredBytes;
            _unloggedGate.EnterWriteLock(); // no unlogged write in progress: every counted write is in the memtable
            try { (covered, coveredBytes) = (_unloggedWrites, _unloggedBytes); }
            finally { _unloggedGate.ExitWriteLock(); }
            if (covered == Volatile.Read(ref _durableThrough)) return;
            _db.Flush(_chunks);
            Volatile.Write(ref _durableBytes, coveredBytes);
            Volatile.Write(ref _durableThrough, covered);
        }
    }

    public void Dispose()
    {
        _unloggedGate.Dispose();
        _logged.Dispose();
        _unlogged.Dispose();
    }
}
