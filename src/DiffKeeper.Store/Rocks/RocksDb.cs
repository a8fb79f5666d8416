using System.Runtime.InteropServices;
using System.Text;
using static DiffKeeper.Store.Rocks.RocksNative;

namespace DiffKeeper.Store.Rocks;

/// <summary>A column family of an open database.</summary>
internal sealed class ColumnFamily(nint handle, string name)
{
    internal nint Handle { get; } = handle;
    public string Name { get; } = name;
}

/// <summary>Column family options the store chooses per family.</summary>
internal sealed class ColumnFamilyOptions
{
    public int Compression;          // 0 none, 4 lz4, 7 zstd
    public ulong WriteBufferSize = 1UL << 20;
    public int MaxWriteBufferNumber = 2;
    public ulong TargetFileSizeBase = 64UL << 20;
    public double BloomBitsPerKey;   // 0 = no filter
    public ulong BlockSize;          // 0 = RocksDB's default (4 KiB)
    /// <summary>A per-file compression dictionary of this many bytes, sampled from the file's own blocks (0 = none).</summary>
    public int MaxDictBytes;
    public ulong? MinBlobSize;       // set = integrated BlobDB on
    public ulong BlobFileSize = 256UL << 20;
    /// <summary>Rewrite blob files that lost values during compaction (only worth it after deletions: gc).</summary>
    public bool BlobGarbageCollection;
}

/// <summary>A minimal, allocation-aware RocksDB handle (open, get, put, batches, iterators).</summary>
internal sealed unsafe class RocksDb : IDisposable
{
    private nint _db;
    private readonly Dictionary<string, ColumnFamily> _cfs = new();
    private readonly List<nint> _options = [];
    private readonly nint _defaultRead = rocksdb_readoptions_create();
    /// <summary>For chunk reads: no block-cache pollution, no CRC (every chunk is checked against its SHA-256).</summary>
    private readonly nint _fastRead = MakeFastRead(fillCache: false);
    /// <summary>
    /// For a reader of most of the chunks (a full export): the same, but the index blocks it reads stay cached.
    /// Without the cache every lookup reads and parses its table block again (a replay of 2,000 files: 2,000 block
    /// reads of a few dozen blocks, ~15 % of the write's CPU).
    /// </summary>
    private readonly nint _bulkRead = MakeFastRead(fillCache: true);

    private static nint MakeFastRead(bool fillCache)
    {
        nint ro = rocksdb_readoptions_create();
        rocksdb_readoptions_set_fill_cache(ro, fillCache ? (byte)1 : (byte)0);
        rocksdb_readoptions_set_verify_checksums(ro, 0);
        return ro;
    }

    private RocksDb() { }

    /// <param name="strictWal">Refuse to open when the write-ahead log is damaged anywhere but an incomplete last
    /// record (which a live writer may be appending); otherwise recovery stops quietly at the first damaged record
    /// (point-in-time recovery, what a writer coming back after a crash needs).</param>
    /// <param name="directWrites">Flushes and compactions write with O_DIRECT (see RecordingStore.Open).</param>
    public static RocksDb Open(string path, bool readOnly, (string Name, ColumnFamilyOptions Options)[] families, bool strictWal = false,
        bool directWrites = false)
    {
        var db = new RocksDb();
        nint dbOpts = CreateDbOptions();
        db._options.Add(dbOpts);
        rocksdb_options_set_create_if_missing(dbOpts, readOnly ? (byte)0 : (byte)1);
        rocksdb_options_set_create_missing_column_families(dbOpts, readOnly ? (byte)0 : (byte)1);
        // A reader never flushes or compacts. RocksDB starts the background threads a writer asks for at open
        // (and joins them at exit), so a read-only `show` would pay for threads that never run; on a loaded node
        // each join waits for the thread to be scheduled. Readers keep the minimum (one low, one high).
        if (!readOnly)
        {
            rocksdb_options_increase_parallelism(dbOpts, Math.Max(2, Environment.ProcessorCount));
            rocksdb_options_set_max_background_jobs(dbOpts, Math.Max(2, Environment.ProcessorCount));
        }
        rocksdb_options_set_max_open_files(dbOpts, 512);
        rocksdb_options_set_keep_log_file_num(dbOpts, 3);
        rocksdb_options_set_info_log_level(dbOpts, 2); // warnings and worse
        // Opening is most of a CLI `show`: do not read every table's properties at open.
        rocksdb_options_set_skip_stats_update_on_db_open(dbOpts, 1);
        // Small metadata families would otherwise keep every chunk-laden log alive until they fill up.
        rocksdb_options_set_max_total_wal_size(dbOpts, 64UL << 20);
        if (strictWal) rocksdb_options_set_wal_recovery_mode(dbOpts, 0); // kTolerateCorruptedTailRecords
        if (directWrites) rocksdb_options_set_use_direct_io_for_flush_and_compaction(dbOpts, 1);

        var all = new List<(string, ColumnFamilyOptions)> { ("default", new ColumnFamilyOptions()) };
        all.AddRange(families);
        int n = all.Count;
        var names = new byte*[n];
        var cfOpts = new nint[n];
        var handles = new nint[n];
        var nameBufs = new List<nint>();
        try
        {
            for (int i = 0; i < n; i++)
            {
                var bytes = Encoding.UTF8.GetBytes(all[i].Item1 + "\0");
                var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
                bytes.CopyTo(new Span<byte>(p, bytes.Length));
                nameBufs.Add((nint)p);
                names[i] = p;
                cfOpts[i] = db.MakeCfOptions(all[i].Item2);
            }
            var pathZ = Encoding.UTF8.GetBytes(path + "\0");
            byte* err = null;
            fixed (byte* pp = pathZ)
            fixed (byte** pn = names)
            fixed (nint* po = cfOpts)
            fixed (nint* ph = handles)
                db._db = readOnly
                    ? rocksdb_open_for_read_only_column_families(dbOpts, pp, n, pn, po, ph, 0, &err)
                    : rocksdb_open_column_families(dbOpts, pp, n, pn, po, ph, &err);
            Check(err);
        }
        catch
        {
            db.Dispose();
            throw;
        }
        finally
        {
            foreach (var p in nameBufs) NativeMemory.Free((void*)p);
        }
        for (int i = 0; i < n; i++) db._cfs[all[i].Item1] = new ColumnFamily(handles[i], all[i].Item1);
        return db;
    }

    /// <summary>
    /// Options with <c>max_file_opening_threads=1</c> (not in the C API, hence the options string): by default an
    /// open starts 16 short-lived threads per column family to open table files in parallel — about 80 thread
    /// creations for a CLI `show` that opens a handful of files, a large part of its latency.
    /// </summary>
    private static nint CreateDbOptions()
    {
        nint defaults = rocksdb_options_create();
        nint opts = rocksdb_options_create();
        try
        {
            byte* err = null;
            fixed (byte* s = "max_file_opening_threads=1;advise_random_on_open=false\0"u8) rocksdb_get_options_from_string(defaults, s, opts, &err);
            Check(err);
            return opts;
        }
        catch
        {
            rocksdb_options_destroy(opts);
            throw;
        }
        finally { rocksdb_options_destroy(defaults); }
    }

    private nint MakeCfOptions(ColumnFamilyOptions o)
    {
        nint h = rocksdb_options_create();
        _options.Add(h);
        rocksdb_options_set_compression(h, o.Compression);
        if (o.MaxDictBytes > 0)
        {
            // Level 32767 = the library's default for the codec; zstd_max_train_bytes stays 0, so the dictionary is
            // raw sampled block contents (no training pass). The buffer bounds the memory a file build holds
            // while it samples.
            rocksdb_options_set_compression_options(h, -14, 32767, 0, o.MaxDictBytes);
            rocksdb_options_set_compression_options_max_dict_buffer_bytes(h, 8UL << 20);
        }
        rocksdb_options_set_write_buffer_size(h, (nuint)o.WriteBufferSize);
        rocksdb_options_set_max_write_buffer_number(h, o.MaxWriteBufferNumber);
        rocksdb_options_set_target_file_size_base(h, o.TargetFileSizeBase);
        // Small L0 files (one per flush) are cheap to keep around: do not slow writers down early.
        rocksdb_options_set_level0_slowdown_writes_trigger(h, 40);
        rocksdb_options_set_level0_stop_writes_trigger(h, 60);
        if (o.BloomBitsPerKey > 0 || o.BlockSize > 0)
        {
            nint table = rocksdb_block_based_options_create();
            if (o.BloomBitsPerKey > 0) rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(o.BloomBitsPerKey));
            if (o.BlockSize > 0) rocksdb_block_based_options_set_block_size(table, (nuint)o.BlockSize);
            rocksdb_options_set_block_based_table_factory(h, table);
            rocksdb_block_based_options_destroy(table);
        }
        if (o.MinBlobSize is ulong min)
        {
            rocksdb_options_set_enable_blob_files(h, 1);
            rocksdb_options_set_min_blob_size(h, min);
            rocksdb_options_set_blob_file_size(h, o.BlobFileSize);
            rocksdb_options_set_enable_blob_gc(h, o.BlobGarbageCollection ? (byte)1 : (byte)0);
            if (o.BlobGarbageCollection) rocksdb_options_set_blob_gc_age_cutoff(h, 1.0);
        }
        return h;
    }

    public ColumnFamily GetColumnFamily(string name) => _cfs[name];

    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ColumnFamily cf, WriteOptions wo)
    {
        byte* err = null;
        fixed (byte* k = key)
        fixed (byte* v = value)
            rocksdb_put_cf(_db, wo.Handle, cf.Handle, k, (nuint)key.Length, v, (nuint)value.Length, &err);
        Check(err);
    }

    public void Remove(ReadOnlySpan<byte> key, ColumnFamily cf, WriteOptions wo)
    {
        byte* err = null;
        fixed (byte* k = key) rocksdb_delete_cf(_db, wo.Handle, cf.Handle, k, (nuint)key.Length, &err);
        Check(err);
    }

    public byte[]? Get(ReadOnlySpan<byte> key, ColumnFamily cf)
    {
        byte* err = null;
        nint slice;
        fixed (byte* k = key) slice = rocksdb_get_pinned_cf(_db, _defaultRead, cf.Handle, k, (nuint)key.Length, &err);
        Check(err);
        if (slice == 0) return null;
        try
        {
            nuint len;
            byte* v = rocksdb_pinnableslice_value(slice, &len);
            return new ReadOnlySpan<byte>(v, checked((int)len)).ToArray();
        }
        finally { rocksdb_pinnableslice_destroy(slice); }
    }

    /// <summary>Hands the value to <paramref name="use"/> straight from RocksDB's pinned buffer (no copy).</summary>
    /// <returns>False when the key is absent.</returns>
    /// <param name="bulk">The caller reads most of the family: keep the blocks read in the block cache.</param>
    public bool TryUse<TState>(ReadOnlySpan<byte> key, ColumnFamily cf, ref TState state, SpanUser<TState> use, bool bulk = false)
    {
        byte* err = null;
        nint slice;
        fixed (byte* k = key) slice = rocksdb_get_pinned_cf(_db, bulk ? _bulkRead : _fastRead, cf.Handle, k, (nuint)key.Length, &err);
        Check(err);
        if (slice == 0) return false;
        try
        {
            nuint len;
            byte* v = rocksdb_pinnableslice_value(slice, &len);
            use(new ReadOnlySpan<byte>(v, checked((int)len)), ref state);
            return true;
        }
        finally { rocksdb_pinnableslice_destroy(slice); }
    }

    public bool HasKey(ReadOnlySpan<byte> key, ColumnFamily cf)
    {
        byte* err = null;
        nint slice;
        fixed (byte* k = key) slice = rocksdb_get_pinned_cf(_db, _defaultRead, cf.Handle, k, (nuint)key.Length, &err);
        Check(err);
        if (slice == 0) return false;
        rocksdb_pinnableslice_destroy(slice);
        return true;
    }

    public void Write(WriteBatch batch, WriteOptions wo)
    {
        byte* err = null;
        rocksdb_write(_db, wo.Handle, batch.Handle, &err);
        Check(err);
    }

    public Iterator NewIterator(ColumnFamily cf, ReadOptions? ro = null) =>
        new(rocksdb_create_iterator_cf(_db, (ro?.Handle) ?? _defaultRead, cf.Handle), ro);

    public string? GetProperty(string name, ColumnFamily cf)
    {
        var z = Encoding.UTF8.GetBytes(name + "\0");
        byte* v;
        fixed (byte* p = z) v = rocksdb_property_value_cf(_db, cf.Handle, p);
        if (v == null) return null;
        var s = Marshal.PtrToStringUTF8((nint)v);
        rocksdb_free(v);
        return s;
    }

    public void CompactRange(ColumnFamily cf) => rocksdb_compact_range_cf(_db, cf.Handle, null, 0, null, 0);

    /// <summary>
    /// Compacts and rewrites even files that could be moved down unchanged (a trivial move keeps one version per
    /// file, so neighbouring versions never get compressed together).
    /// </summary>
    public void CompactRangeRewriting(ColumnFamily cf)
    {
        nint o = rocksdb_compactoptions_create();
        rocksdb_compactoptions_set_bottommost_level_compaction(o, 3); // kForceOptimized
        rocksdb_compact_range_cf_opt(_db, cf.Handle, o, null, 0, null, 0);
        rocksdb_compactoptions_destroy(o);
    }

    /// <summary>Flushes one column family's memtable to table (and blob) files and waits for it.</summary>
    public void Flush(ColumnFamily cf)
    {
        nint fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        try
        {
            byte* err = null;
            rocksdb_flush_cf(_db, fo, cf.Handle, &err);
            Check(err);
        }
        finally { rocksdb_flushoptions_destroy(fo); }
    }

    /// <summary>Flushes every column family's memtable (rocksdb_flush alone flushes only the default one).</summary>
    public void Flush()
    {
        nint fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        try
        {
            foreach (var cf in _cfs.Values)
            {
                byte* err = null;
                rocksdb_flush_cf(_db, fo, cf.Handle, &err);
                Check(err);
            }
        }
        finally { rocksdb_flushoptions_destroy(fo); }
    }

    public void Dispose()
    {
        foreach (var cf in _cfs.Values) rocksdb_column_family_handle_destroy(cf.Handle);
        _cfs.Clear();
        if (_db != 0) { rocksdb_close(_db); _db = 0; }
        foreach (var o in _options) rocksdb_options_destroy(o);
        _options.Clear();
        rocksdb_readoptions_destroy(_defaultRead);
        rocksdb_readoptions_destroy(_fastRead);
        rocksdb_readoptions_destroy(_bulkRead);
    }
}

internal delegate void SpanUser<TState>(ReadOnlySpan<byte> value, ref TState state);

internal sealed class WriteOptions : IDisposable
{
    internal nint Handle { get; } = rocksdb_writeoptions_create();
    public WriteOptions SetSync(bool sync) { rocksdb_writeoptions_set_sync(Handle, sync ? (byte)1 : (byte)0); return this; }
    public WriteOptions DisableWal(bool disable) { rocksdb_writeoptions_disable_WAL(Handle, disable ? 1 : 0); return this; }
    public void Dispose() => rocksdb_writeoptions_destroy(Handle);
}

/// <summary>Read options; owns a native copy of the iterate upper bound (RocksDB keeps only a pointer to it).</summary>
internal sealed unsafe class ReadOptions : IDisposable
{
    private byte* _upper;
    internal nint Handle { get; } = rocksdb_readoptions_create();

    public ReadOptions SetIterateUpperBound(ReadOnlySpan<byte> key)
    {
        if (_upper != null) NativeMemory.Free(_upper);
        _upper = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, key.Length));
        key.CopyTo(new Span<byte>(_upper, key.Length));
        rocksdb_readoptions_set_iterate_upper_bound(Handle, _upper, (nuint)key.Length);
        return this;
    }

    public void Dispose()
    {
        rocksdb_readoptions_destroy(Handle);
        if (_upper != null) { NativeMemory.Free(_upper); _upper = null; }
    }
}

internal sealed unsafe class WriteBatch : IDisposable
{
    internal nint Handle { get; private set; } = rocksdb_writebatch_create();

    public WriteBatch Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ColumnFamily cf)
    {
        fixed (byte* k = key)
        fixed (byte* v = value)
            rocksdb_writebatch_put_cf(Handle, cf.Handle, k, (nuint)key.Length, v, (nuint)value.Length);
        return this;
    }

    public WriteBatch Delete(ReadOnlySpan<byte> key, ColumnFamily cf)
    {
        fixed (byte* k = key) rocksdb_writebatch_delete_cf(Handle, cf.Handle, k, (nuint)key.Length);
        return this;
    }

    public WriteBatch DeleteRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, ColumnFamily cf)
    {
        fixed (byte* s = start)
        fixed (byte* e = end)
            rocksdb_writebatch_delete_range_cf(Handle, cf.Handle, s, (nuint)start.Length, e, (nuint)end.Length);
        return this;
    }

    public int Count() => rocksdb_writebatch_count(Handle);
    public void Clear() => rocksdb_writebatch_clear(Handle);

    public void Dispose()
    {
        if (Handle != 0) { rocksdb_writebatch_destroy(Handle); Handle = 0; }
    }
}

/// <summary>An iterator; key/value spans are valid until the next move.</summary>
internal sealed unsafe class Iterator : IDisposable
{
    private nint _it;
    private readonly ReadOptions? _ro;

    internal Iterator(nint it, ReadOptions? ro) { _it = it; _ro = ro; }

    /// <summary>False at the end — or when the iteration hit damaged data, which throws instead of ending quietly.</summary>
    public bool Valid()
    {
        if (rocksdb_iter_valid(_it) != 0) return true;
        CheckError();
        return false;
    }
    public void SeekToFirst() => rocksdb_iter_seek_to_first(_it);
    public void Next() => rocksdb_iter_next(_it);

    public void Seek(ReadOnlySpan<byte> key)
    {
        fixed (byte* k = key) rocksdb_iter_seek(_it, k, (nuint)key.Length);
    }

    public void SeekForPrev(ReadOnlySpan<byte> key)
    {
        fixed (byte* k = key) rocksdb_iter_seek_for_prev(_it, k, (nuint)key.Length);
    }

    public ReadOnlySpan<byte> GetKeySpan()
    {
        nuint len;
        byte* p = rocksdb_iter_key(_it, &len);
        return new ReadOnlySpan<byte>(p, (int)len);
    }

    public ReadOnlySpan<byte> GetValueSpan()
    {
        nuint len;
        byte* p = rocksdb_iter_value(_it, &len);
        return new ReadOnlySpan<byte>(p, (int)len);
    }

    public byte[] Key() => GetKeySpan().ToArray();
    public byte[] Value() => GetValueSpan().ToArray();

    /// <summary>Throws if the iteration stopped because of an error rather than the end.</summary>
    public void CheckError()
    {
        byte* err = null;
        rocksdb_iter_get_error(_it, &err);
        Check(err);
    }

    public void Dispose()
    {
        if (_it != 0) { rocksdb_iter_destroy(_it); _it = 0; }
        _ro?.Dispose();
    }
}
