using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using DiffKeeper.Store.Serialization;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store;

/// <summary>
/// The recording store: one RocksDB directory with four column families (see docs/store.md).
/// One writer process at a time (RocksDB's LOCK file); any number of read-only openers.
/// </summary>
public sealed class RecordingStore : IDisposable
{
    public const string ChunksCf = "chunks", VersionsCf = "versions", EventsCf = "events", RecordingsCf = "recordings";

    internal readonly RocksDb Db;
    internal readonly ColumnFamily Chunks, Versions, Events, Recordings;
    /// <summary>WAL on, no fsync per batch: recordings, events, and maintenance writes.</summary>
    internal readonly WriteOptions Write = new WriteOptions().SetSync(false);
    /// <summary>The only path from chunk bytes to a durable chunk, and the only gate for version records.</summary>
    internal readonly Ingest.ChunkSink Sink;
    /// <summary>Where chunk values are read from: this store's chunk family, or a packed file read in place.</summary>
    internal Chunking.IChunkSource ChunkSource { get; private set; }
    private readonly string? _deleteOnDispose;
    private static long _eventSeq = RandomNumberGenerator.GetInt32(int.MaxValue) * 65536L;

    public string Directory { get; }
    public bool ReadOnly { get; }

    private RecordingStore(RocksDb db, string dir, bool readOnly, string? deleteOnDispose)
    {
        Db = db;
        Directory = dir;
        ReadOnly = readOnly;
        _deleteOnDispose = deleteOnDispose;
        Chunks = db.GetColumnFamily(ChunksCf);
        Versions = db.GetColumnFamily(VersionsCf);
        Events = db.GetColumnFamily(EventsCf);
        Recordings = db.GetColumnFamily(RecordingsCf);
        Sink = new Ingest.ChunkSink(db, Chunks, Versions);
        ChunkSource = new Chunking.StoreChunkSource(db, Chunks);
    }

    public static bool Exists(string dir) => File.Exists(Path.Combine(dir, "CURRENT"));

    /// <summary>Opens (creating when writable) the store. Throws <see cref="StoreLockedException"/> when another writer has it.</summary>
    /// <param name="strict">Fail on write-ahead-log damage instead of recovering up to it. Always on for readers:
    /// a reader must report damage (exit 4), never show a recording with its newest data silently missing.</param>
    public static RecordingStore Open(string dir, bool readOnly = false, string? deleteOnDispose = null, bool forGc = false, bool strict = false)
    {
        if (readOnly && !Exists(dir)) throw new NotFoundException($"no store at {dir}");
        if (!readOnly) System.IO.Directory.CreateDirectory(dir);
        (string, ColumnFamilyOptions)[] families =
        [
            (ChunksCf, ChunkOptions(forGc)),
            // A path's versions are adjacent keys and share most of their chunk lists: large zstd blocks compress
            // one version against its neighbours (an append-only log's 200 versions would otherwise store 200
            // nearly identical lists of 32-byte hashes). A 20 MiB file's version lists 1,280 chunks (45 KB), so a
            // block holds only ~3 of them: a 64 KiB dictionary sampled from each file's own blocks lets every block
            // compress against another version's list too (workload 3, 100 versions: version tables 1.79 → 0.72 MB).
            (VersionsCf, new ColumnFamilyOptions { Compression = Zstd, BlockSize = 128UL << 10, WriteBufferSize = 4UL << 20, MaxDictBytes = 64 << 10 }),
            (EventsCf, new ColumnFamilyOptions { Compression = Zstd, BlockSize = 32UL << 10, WriteBufferSize = 4UL << 20 }),
            (RecordingsCf, new ColumnFamilyOptions { Compression = Lz4, WriteBufferSize = 1UL << 20 }),
        ];
        // Writers flush chunk (blob) files with O_DIRECT where the file system allows it: a page-cache copy of
        // every byte cost ~15% of a 1 GiB ingest's time, and a recorder should not push the node's page cache
        // (the containers' working sets) out with data nobody reads back soon.
        bool directWrites = !readOnly && DirectIo.Supported(dir);
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                try { return new RecordingStore(RocksDb.Open(dir, readOnly, families, strict || readOnly, directWrites), dir, readOnly, deleteOnDispose); }
                catch (RocksException e) when (readOnly && attempt < 8 && e.Message.Contains("No such file or directory", StringComparison.Ordinal))
                {
                    // A live writer deleted a log or table file between our listing and our open: look again.
                    Thread.Sleep(10 * attempt);
                }
            }
        }
        catch (RocksException e) when (e.Message.Contains("Corruption", StringComparison.OrdinalIgnoreCase))
        {
            throw new CorruptDataException($"store {dir} is corrupt: {e.Message}");
        }
        catch (RocksException e) when (IsLockError(e.Message))
        {
            throw new StoreLockedException($"store {dir} is locked by another process (is diffkeeperd or another diffkeeper running?)");
        }
        catch (RocksException e) when (e.Message.Contains("Column famil", StringComparison.OrdinalIgnoreCase) ||
                                       e.Message.Contains("Invalid argument", StringComparison.OrdinalIgnoreCase))
        {
            throw new CorruptDataException($"{dir} is not a diffkeeper store: {e.Message}");
        }
    }

    private const int Lz4 = 4, Zstd = 7;

    /// <summary>RocksDB's LOCK-file failures ("While lock file: …/LOCK: Resource temporarily unavailable", "lock hold by current process").</summary>
    public static bool IsLockError(string message) =>
        message.Contains("/LOCK", StringComparison.Ordinal) || message.Contains("lock file", StringComparison.OrdinalIgnoreCase) ||
        message.Contains("lock hold", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Chunks are already zstd-compressed and written once: no block compression, a Bloom filter so dedup
    /// lookups of new chunks rarely touch disk, and values in blob files (BlobDB) so compaction never rewrites
    /// them (with values in the LSM, compaction doubled the size for a while and ingest was ~30% slower).
    /// <para>
    /// Every new chunk of an ingest is looked up first (dedup), and a new chunk is by definition absent: each
    /// lookup consults the filter of every level-0 table (up to 40 of them, one per flush) and of one table per
    /// level, and every false positive reads a data block from a table that was written with O_DIRECT, so from
    /// the disk. At 10 bits per key (~1 % false positives) a warm 1 GiB ingest blocked ~580 times in those reads;
    /// at 20 bits (~0.05 %) ~25 times. The filter costs 2.5 bytes per chunk (~10 MiB per 64 GiB of 16 KiB chunks).
    /// </para>
    /// <para>
    /// Four write buffers, not two: with two, the workers' writes stopped ~35 times per 1 GiB ingest while one
    /// flush was still writing and the next buffer was full; four absorb a flush's fsyncs (measured: no stop;
    /// peak RSS of warm runs 119–131 MiB against 113–122 MiB).
    /// </para>
    /// </summary>
    private static ColumnFamilyOptions ChunkOptions(bool forGc) => new()
    {
        Compression = 0,
        WriteBufferSize = 12UL << 20,
        MaxWriteBufferNumber = 4,
        BlobGarbageCollection = forGc,
        BloomBitsPerKey = 20,
        MinBlobSize = 256,
        BlobFileSize = 256UL << 20,
    };

    /// <summary>
    /// Asks the kernel to read the chunk (blob) files ahead when a reader is about to read at least half of their
    /// bytes (a full export): chunk reads are small and, from a cold cache, each would wait on the disk; read
    /// ahead in large sequential requests they come from the page cache. Never for a small part of a big store.
    /// Such a reader also keeps the chunk family's table blocks it looks up in the block cache.
    /// </summary>
    public unsafe void PrefetchChunkFiles(long bytesToRead)
    {
        try
        {
            var blobs = new DirectoryInfo(Directory).EnumerateFiles("*.blob").ToList();
            long total = blobs.Sum(f => f.Length);
            if (total == 0 || bytesToRead < total / 2) return;
            if (ChunkSource is Chunking.StoreChunkSource live) live.Bulk = true;
            foreach (var f in blobs)
            {
                var z = Native.Libc.CString(System.Text.Encoding.UTF8.GetBytes(f.FullName));
                int fd;
                fixed (byte* p = z) fd = Native.Libc.openat(Native.Libc.AT_FDCWD, p, Native.Libc.O_RDONLY | Native.Libc.O_CLOEXEC, 0);
                if (fd < 0) continue;
                Native.Libc.posix_fadvise(fd, 0, 0, Native.Libc.POSIX_FADV_WILLNEED);
                Native.Libc.close(fd);
            }
        }
        catch (IOException) { } // only a hint
        catch (UnauthorizedAccessException) { }
    }

    // ---- recordings -------------------------------------------------------------------------------------------

    public List<RecordingInfo> ListRecordings()
    {
        var list = new List<RecordingInfo>();
        using var it = Db.NewIterator(Recordings);
        for (it.SeekToFirst(); it.Valid(); it.Next()) list.Add(Records.DecodeRecording(it.GetValueSpan()));
        list.Sort((a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : a.Id.CompareTo(b.Id));
        return list;
    }

    public RecordingInfo? GetRecording(ulong id)
    {
        var v = Db.Get(Keys.Recording(id), Recordings);
        return v == null ? null : Records.DecodeRecording(v);
    }

    public RecordingInfo CreateRecording(RecordingInfo info)
    {
        Span<byte> id = stackalloc byte[8];
        do { RandomNumberGenerator.Fill(id); info.Id = BitConverter.ToUInt64(id) & 0x7fff_ffff_ffff_ffffUL; }
        while (info.Id == 0 || GetRecording(info.Id) != null);
        if (info.LastMoment < info.Start) info.LastMoment = info.Start;
        SaveRecording(info);
        return info;
    }

    public void SaveRecording(RecordingInfo info) => Db.Put(Keys.Recording(info.Id), Records.Encode(info), Recordings, Write);

    /// <summary>
    /// A recording by id, by container id (its latest recording) or by name (the latest with that name).
    /// </summary>
    public RecordingInfo Resolve(string name)
    {
        if (RecordingInfo.TryParseId(name, out var id) && GetRecording(id) is { } byId) return byId;
        RecordingInfo? best = null;
        foreach (var r in ListRecordings())
        {
            if (r.ContainerId != name && r.Name != name) continue;
            if (best == null || r.Start >= best.Start) best = r;
        }
        return best ?? throw new NotFoundException($"no recording named {name}");
    }

    public RecordingInfo? FindByName(string name)
    {
        try { return Resolve(name); } catch (NotFoundException) { return null; }
    }

    // ---- events -----------------------------------------------------------------------------------------------

    /// <summary>Appends events (lifecycle, change, gap) to a recording; an exit event sets the exit status and time.</summary>
    public void AddEvents(RecordingInfo rec, IEnumerable<RecordedEvent> events)
    {
        using var batch = new WriteBatch();
        foreach (var e in events)
        {
            if (e.Seq == 0) e.Seq = (ulong)Interlocked.Increment(ref _eventSeq);
            batch.Put(Keys.Event(rec.Id, e.Time, e.Seq), Records.Encode(e), Events);
            if (e.Time > rec.LastMoment) rec.LastMoment = e.Time;
            if (e.Kind == EventKinds.Exit)
            {
                rec.ExitTime = e.Time;
                if (e.Detail != null && int.TryParse(e.Detail, out var status)) rec.ExitStatus = status;
            }
        }
        batch.Put(Keys.Recording(rec.Id), Records.Encode(rec), Recordings);
        Db.Write(batch, Write);
    }

    public void AddEvent(RecordingInfo rec, RecordedEvent e) => AddEvents(rec, [e]);

    public IEnumerable<RecordedEvent> ReadEvents(ulong rec, long from = long.MinValue, long to = long.MaxValue)
    {
        var start = Keys.Event(rec, from, 0);
        var prefixEnd = Keys.PrefixEnd(Keys.Recording(rec));
        var ro = new ReadOptions();
        if (prefixEnd != null) ro.SetIterateUpperBound(prefixEnd);
        using var it = Db.NewIterator(Events, ro);
        for (it.Seek(start); it.Valid(); it.Next())
        {
            var k = it.GetKeySpan();
            long t = Keys.TimeFromBits(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(k[8..]));
            if (t > to) yield break;
            yield return Records.DecodeEvent(t, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(k[16..]), it.GetValueSpan());
        }
    }

    // ---- versions ---------------------------------------------------------------------------------------------

    /// <summary>Every version of a recording (optionally only below a directory), in path then time order.</summary>
    internal IEnumerable<(byte[] Key, byte[] Value)> RawVersions(ulong rec, ReadOnlySpan<byte> subtree = default)
    {
        var prefix = Keys.VersionSubtreePrefix(rec, subtree);
        return RawRange(Versions, prefix);
    }

    internal IEnumerable<(byte[] Key, byte[] Value)> RawRange(ColumnFamily cf, byte[] prefix)
    {
        var end = Keys.PrefixEnd(prefix);
        var ro = new ReadOptions();
        if (end != null) ro.SetIterateUpperBound(end);
        using var it = Db.NewIterator(cf, ro);
        for (it.Seek(prefix); it.Valid(); it.Next()) yield return (it.Key(), it.Value());
    }

    public long CountVersions(ulong rec)
    {
        var prefix = Keys.Recording(rec);
        var end = Keys.PrefixEnd(prefix);
        var ro = new ReadOptions();
        if (end != null) ro.SetIterateUpperBound(end);
        using var it = Db.NewIterator(Versions, ro);
        long n = 0;
        for (it.Seek(prefix); it.Valid(); it.Next()) n++;
        return n;
    }

    public IEnumerable<FileVersion> ReadVersions(ulong rec, bool withChunks = false)
    {
        foreach (var (k, v) in RawVersions(rec))
        {
            var (path, time) = Keys.SplitVersion(k);
            yield return Records.DecodeVersion(path, time, v, withChunks);
        }
    }

    /// <summary>The versions of one path with time &lt;= <paramref name="at"/>, oldest first.</summary>
    public List<FileVersion> VersionsOf(ulong rec, ReadOnlySpan<byte> path, long at, bool withChunks)
    {
        var list = new List<FileVersion>();
        var prefix = Keys.VersionPathPrefix(rec, path);
        var end = Keys.PrefixEnd(prefix);
        var ro = new ReadOptions();
        if (end != null) ro.SetIterateUpperBound(end);
        using var it = Db.NewIterator(Versions, ro);
        for (it.Seek(prefix); it.Valid(); it.Next())
        {
            var k = it.GetKeySpan();
            long t = Keys.VersionKeyTime(k);
            if (t > at) break;
            list.Add(Records.DecodeVersion(path, t, it.GetValueSpan(), withChunks));
        }
        return list;
    }

    /// <summary>The newest version of a path at or before <paramref name="at"/> (ignores parent deletions).</summary>
    public FileVersion? LatestVersionOf(ulong rec, ReadOnlySpan<byte> path, long at, bool withChunks = true)
    {
        var key = Keys.Version(rec, path, at);
        var prefix = Keys.VersionPathPrefix(rec, path);
        using var it = Db.NewIterator(Versions);
        it.SeekForPrev(key);
        if (!it.Valid()) return null;
        var k = it.GetKeySpan();
        if (!k.StartsWith(prefix) || k.Length != prefix.Length + 8) return null;
        return Records.DecodeVersion(path, Keys.VersionKeyTime(k), it.GetValueSpan(), withChunks);
    }

    // ---- chunks -----------------------------------------------------------------------------------------------

    internal bool HasChunk(Hash256 h) => ChunkSource.HasChunk(h);

    /// <summary>A copy of a chunk's stored value (codec byte, raw length, payload); null when absent.</summary>
    internal byte[]? GetStoredChunk(Hash256 h)
    {
        byte[]? copy = null;
        return ChunkSource.TryUseChunk(h, ref copy, static (stored, ref c) => c = stored.ToArray()) ? copy : null;
    }

    /// <summary>From now on chunk values are read from a packed recording's file (see <see cref="Pack.PackReader"/>).</summary>
    internal void ReadChunksFrom(SafeFileHandle packFile)
    {
        (ChunkSource as IDisposable)?.Dispose();
        ChunkSource = new Chunking.PackedChunkSource(Db, Chunks, packFile);
    }

    internal long ApproximateSize(ColumnFamily cf)
    {
        long.TryParse(Db.GetProperty("rocksdb.total-sst-files-size", cf), out var sst);
        long.TryParse(Db.GetProperty("rocksdb.total-blob-file-size", cf), out var blob);
        return sst + blob;
    }

    /// <summary>Per column family: files at level 0, live SST bytes, blob bytes (for doctor and debugging).</summary>
    public List<(string Family, long Level0Files, long SstBytes, long BlobBytes)> FileStats()
    {
        var list = new List<(string, long, long, long)>();
        foreach (var cf in new[] { Chunks, Versions, Events, Recordings })
        {
            long.TryParse(Db.GetProperty("rocksdb.num-files-at-level0", cf), out var l0);
            long.TryParse(Db.GetProperty("rocksdb.live-sst-files-size", cf), out var sst);
            long.TryParse(Db.GetProperty("rocksdb.total-blob-file-size", cf), out var blob);
            list.Add((cf.Name, l0, sst, blob));
        }
        return list;
    }

    public void Flush()
    {
        if (ReadOnly) return;
        Db.Flush();
    }

    /// <summary>
    /// A short-lived writer (one CLI snapshot) flushes a few small files per column family and exits before
    /// background compaction runs: merge them here once they pile up, or the store becomes hundreds of tiny
    /// files (per-file overhead and slower opens). For chunks this only rewrites the small blob index entries.
    /// </summary>
    private void CompactSmallFiles()
    {
        foreach (var cf in new[] { Versions, Events, Recordings, Chunks })
        {
            int files = 0;
            for (int level = 0; level < 7; level++)
                if (int.TryParse(Db.GetProperty($"rocksdb.num-files-at-level{level}", cf), out var n)) files += n;
            if (files < 16) continue;
            long.TryParse(Db.GetProperty("rocksdb.live-sst-files-size", cf), out var size);
            // Metadata of a small store is cheap to rewrite, and rewriting is what puts a path's versions in one
            // compressed block; chunk values live in blob files, so their index only needs merging.
            if (cf != Chunks && size < (256L << 20)) Db.CompactRangeRewriting(cf);
            else Db.CompactRange(cf);
        }
    }

    public void Dispose()
    {
        // A flushed store reopens without replaying its write-ahead log (which holds every chunk since the last flush).
        if (!ReadOnly && _deleteOnDispose == null)
        {
            try
            {
                Db.Flush();
                CompactSmallFiles();
            }
            catch (RocksException) { }
        }
        Db.Dispose();
        Sink.Dispose();
        (ChunkSource as IDisposable)?.Dispose();
        if (_deleteOnDispose != null)
        {
            try { System.IO.Directory.Delete(_deleteOnDispose, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
