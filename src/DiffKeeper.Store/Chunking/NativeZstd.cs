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
}
