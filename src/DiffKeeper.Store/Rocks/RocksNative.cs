using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Rocks;

/// <summary>
/// The slice of librocksdb's C API the store uses, bound at compile time (LibraryImport). RocksDbSharp builds its
/// bindings with runtime IL generation, which cost ~660 ms at every process start — too slow for a CLI whose
/// `show` should answer in milliseconds. The native library is still the one the RocksDB package ships.
/// </summary>
internal static unsafe partial class RocksNative
{
    private const string Lib = "librocksdb";

    [LibraryImport(Lib)] public static partial nint rocksdb_options_create();
    [LibraryImport(Lib)] public static partial void rocksdb_options_destroy(nint o);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_create_if_missing(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_create_missing_column_families(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_increase_parallelism(nint o, int threads);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_max_background_jobs(nint o, int n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_max_open_files(nint o, int n);
    [LibraryImport(Lib)] public static partial void rocksdb_get_options_from_string(nint baseOptions, byte* opts, nint newOptions, byte** err);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_keep_log_file_num(nint o, nuint n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_info_log_level(nint o, int level);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_skip_stats_update_on_db_open(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_wal_recovery_mode(nint o, int mode);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_max_total_wal_size(nint o, ulong n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_use_direct_io_for_flush_and_compaction(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_compression(nint o, int type);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_compression_options(nint o, int windowBits, int level, int strategy, int maxDictBytes);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_compression_options_max_dict_buffer_bytes(nint o, ulong bytes);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_write_buffer_size(nint o, nuint size);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_max_write_buffer_number(nint o, int n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_target_file_size_base(nint o, ulong n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_enable_blob_files(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_min_blob_size(nint o, ulong v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_blob_file_size(nint o, ulong v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_enable_blob_gc(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_blob_gc_age_cutoff(nint o, double v);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_level0_slowdown_writes_trigger(nint o, int n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_level0_stop_writes_trigger(nint o, int n);
    [LibraryImport(Lib)] public static partial void rocksdb_options_set_block_based_table_factory(nint o, nint table);
    [LibraryImport(Lib)] public static partial nint rocksdb_block_based_options_create();
    [LibraryImport(Lib)] public static partial void rocksdb_block_based_options_destroy(nint t);
    [LibraryImport(Lib)] public static partial void rocksdb_block_based_options_set_filter_policy(nint t, nint policy);
    [LibraryImport(Lib)] public static partial void rocksdb_block_based_options_set_block_size(nint t, nuint size);
    [LibraryImport(Lib)] public static partial nint rocksdb_filterpolicy_create_bloom(double bitsPerKey);

    [LibraryImport(Lib)] public static partial nint rocksdb_open_column_families(nint opts, byte* name, int n, byte** names, nint* cfOpts, nint* handles, byte** err);
    [LibraryImport(Lib)] public static partial nint rocksdb_open_for_read_only_column_families(nint opts, byte* name, int n, byte** names, nint* cfOpts, nint* handles, byte errorIfWalExists, byte** err);
    [LibraryImport(Lib)] public static partial void rocksdb_close(nint db);
    [LibraryImport(Lib)] public static partial void rocksdb_column_family_handle_destroy(nint cf);

    [LibraryImport(Lib)] public static partial void rocksdb_put_cf(nint db, nint wo, nint cf, byte* k, nuint kl, byte* v, nuint vl, byte** err);
    [LibraryImport(Lib)] public static partial void rocksdb_delete_cf(nint db, nint wo, nint cf, byte* k, nuint kl, byte** err);
    [LibraryImport(Lib)] public static partial nint rocksdb_get_pinned_cf(nint db, nint ro, nint cf, byte* k, nuint kl, byte** err);
    [LibraryImport(Lib)] public static partial byte* rocksdb_pinnableslice_value(nint slice, nuint* len);
    [LibraryImport(Lib)] public static partial void rocksdb_pinnableslice_destroy(nint slice);
    [LibraryImport(Lib)] public static partial void rocksdb_write(nint db, nint wo, nint batch, byte** err);
    [LibraryImport(Lib)] public static partial byte* rocksdb_property_value_cf(nint db, nint cf, byte* name);
    [LibraryImport(Lib)] public static partial void rocksdb_compact_range_cf(nint db, nint cf, byte* start, nuint sl, byte* limit, nuint ll);
    [LibraryImport(Lib)] public static partial void rocksdb_flush(nint db, nint fo, byte** err);
    [LibraryImport(Lib)] public static partial nint rocksdb_compactoptions_create();
    [LibraryImport(Lib)] public static partial void rocksdb_compactoptions_destroy(nint o);
    [LibraryImport(Lib)] public static partial void rocksdb_compactoptions_set_bottommost_level_compaction(nint o, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_compact_range_cf_opt(nint db, nint cf, nint opt, byte* start, nuint sl, byte* limit, nuint ll);
    [LibraryImport(Lib)] public static partial void rocksdb_flush_cf(nint db, nint fo, nint cf, byte** err);
    [LibraryImport(Lib)] public static partial nint rocksdb_flushoptions_create();
    [LibraryImport(Lib)] public static partial void rocksdb_flushoptions_set_wait(nint fo, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_flushoptions_destroy(nint fo);
    [LibraryImport(Lib)] public static partial void rocksdb_free(void* p);

    [LibraryImport(Lib)] public static partial nint rocksdb_writeoptions_create();
    [LibraryImport(Lib)] public static partial void rocksdb_writeoptions_set_sync(nint wo, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_writeoptions_disable_WAL(nint wo, int v);
    [LibraryImport(Lib)] public static partial void rocksdb_writeoptions_destroy(nint wo);
    [LibraryImport(Lib)] public static partial nint rocksdb_readoptions_create();
    [LibraryImport(Lib)] public static partial void rocksdb_readoptions_set_iterate_upper_bound(nint ro, byte* k, nuint kl);
    [LibraryImport(Lib)] public static partial void rocksdb_readoptions_set_verify_checksums(nint ro, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_readoptions_set_fill_cache(nint ro, byte v);
    [LibraryImport(Lib)] public static partial void rocksdb_readoptions_destroy(nint ro);

    [LibraryImport(Lib)] public static partial nint rocksdb_writebatch_create();
    [LibraryImport(Lib)] public static partial void rocksdb_writebatch_destroy(nint b);
    [LibraryImport(Lib)] public static partial void rocksdb_writebatch_clear(nint b);
    [LibraryImport(Lib)] public static partial int rocksdb_writebatch_count(nint b);
    [LibraryImport(Lib)] public static partial void rocksdb_writebatch_put_cf(nint b, nint cf, byte* k, nuint kl, byte* v, nuint vl);
    [LibraryImport(Lib)] public static partial void rocksdb_writebatch_delete_cf(nint b, nint cf, byte* k, nuint kl);
    [LibraryImport(Lib)] public static partial void rocksdb_writebatch_delete_range_cf(nint b, nint cf, byte* s, nuint sl, byte* e, nuint el);

    [LibraryImport(Lib)] public static partial nint rocksdb_create_iterator_cf(nint db, nint ro, nint cf);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_destroy(nint it);
    [LibraryImport(Lib)] public static partial byte rocksdb_iter_valid(nint it);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_seek_to_first(nint it);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_seek(nint it, byte* k, nuint kl);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_seek_for_prev(nint it, byte* k, nuint kl);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_next(nint it);
    [LibraryImport(Lib)] public static partial byte* rocksdb_iter_key(nint it, nuint* len);
    [LibraryImport(Lib)] public static partial byte* rocksdb_iter_value(nint it, nuint* len);
    [LibraryImport(Lib)] public static partial void rocksdb_iter_get_error(nint it, byte** err);

    /// <summary>Throws when a C API call reported an error (and frees the message).</summary>
    public static void Check(byte* err)
    {
        if (err == null) return;
        var msg = Marshal.PtrToStringUTF8((nint)err) ?? "unknown RocksDB error";
        rocksdb_free(err);
        throw new RocksException(msg);
    }
}

/// <summary>An error reported by RocksDB (the message is RocksDB's status text).</summary>
public sealed class RocksException(string message) : Exception(message);
