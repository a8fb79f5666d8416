using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Native;

/// <summary>
/// RocksDbSharp has no managed setters for integrated BlobDB, but librocksdb exports them. We bind them from the
/// very library RocksDbSharp loaded (found in /proc/self/maps) so the options handle is the same object.
/// </summary>
internal static unsafe class RocksBlobOptions
{
    private static nint _lib = -1;

    public static bool TryEnable(nint columnFamilyOptions, ulong minBlobSize, ulong blobFileSize)
    {
        var lib = Library();
        if (lib == 0) return false;
        if (!NativeLibrary.TryGetExport(lib, "rocksdb_options_set_enable_blob_files", out var enable) ||
            !NativeLibrary.TryGetExport(lib, "rocksdb_options_set_min_blob_size", out var minSize) ||
            !NativeLibrary.TryGetExport(lib, "rocksdb_options_set_blob_file_size", out var fileSize) ||
            !NativeLibrary.TryGetExport(lib, "rocksdb_options_set_enable_blob_gc", out var gc))
            return false;
        ((delegate* unmanaged<nint, byte, void>)enable)(columnFamilyOptions, 1);
        ((delegate* unmanaged<nint, ulong, void>)minSize)(columnFamilyOptions, minBlobSize);
        ((delegate* unmanaged<nint, ulong, void>)fileSize)(columnFamilyOptions, blobFileSize);
        ((delegate* unmanaged<nint, byte, void>)gc)(columnFamilyOptions, 1);
        return true;
    }

    private static nint Library()
    {
        if (_lib != -1) return _lib;
        _lib = 0;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int i = line.IndexOf('/');
                if (i < 0 || !line.Contains("librocksdb")) continue;
                if (NativeLibrary.TryLoad(line[i..], out var h)) { _lib = h; break; }
            }
        }
        catch (IOException) { }
        return _lib;
    }
}
