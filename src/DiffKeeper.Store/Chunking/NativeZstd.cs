using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Chunking;

/// <summary>
/// zstd's C API from the native RocksDB library, which links zstd in and exports its symbols: no second native
/// dependency. The managed port (ZstdSharp) was a third of ingest CPU time; native zstd at the same level
/// produces the same format (plain zstd frames) at about twice the speed.
/// </summary>
internal static unsafe partial class NativeZstd
{
    private const string Lib = "librocksdb";

    [LibraryImport(Lib)] public static partial nint ZSTD_createCCtx();
    [LibraryImport(Lib)] public static partial nuint ZSTD_freeCCtx(nint cctx);
    [LibraryImport(Lib)] public static partial nuint ZSTD_compressCCtx(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);
    [LibraryImport(Lib)] public static partial nuint ZSTD_compressBound(nuint srcSize);
    [LibraryImport(Lib)] public static partial nint ZSTD_createDCtx();
    [LibraryImport(Lib)] public static partial nuint ZSTD_freeDCtx(nint dctx);
    [LibraryImport(Lib)] public static partial nuint ZSTD_decompressDCtx(nint dctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);
    [LibraryImport(Lib)] public static partial uint ZSTD_isError(nuint code);

    // Delta chunks: the base chunk's raw bytes as a raw-content prefix (never parsed as a zstd dictionary, whatever
    // the bytes are), one frame at a time. Exported by librocksdb's zstd 1.5.7 (`nm -D librocksdb.so`).
    public const int ZSTD_c_compressionLevel = 100;
    public const int ZSTD_reset_session_and_parameters = 3;
    [LibraryImport(Lib)] public static partial nuint ZSTD_CCtx_reset(nint cctx, int reset);
    [LibraryImport(Lib)] public static partial nuint ZSTD_CCtx_setParameter(nint cctx, int param, int value);
    [LibraryImport(Lib)] public static partial nuint ZSTD_CCtx_refPrefix(nint cctx, byte* prefix, nuint prefixSize);
    [LibraryImport(Lib)] public static partial nuint ZSTD_compress2(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);
    [LibraryImport(Lib)] public static partial nuint ZSTD_DCtx_refPrefix(nint dctx, byte* prefix, nuint prefixSize);
}
