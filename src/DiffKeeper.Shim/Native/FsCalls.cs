using System.Runtime.InteropServices;

namespace DiffKeeper.Shim.Native;

/// <summary>
/// The file-system calls the recorder's freeze needs that Tmds.LibC 0.5 does not bind: getdents64 (directory
/// listing on raw byte names, where .NET's enumeration would decode names as UTF-16), the l*/f* xattr calls and
/// copy_file_range. Everything else the freeze uses (openat, linkat, mkdirat, fchownat, statx, ioctl, pread, pwrite…)
/// comes from Tmds.LibC. Source-generated, so Native AOT binds them without reflection.
/// </summary>
internal static unsafe partial class FsCalls
{
    private const string Lib = "libc";

    public const byte DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8, DT_LNK = 10, DT_SOCK = 12;
    /// <summary>_IOW(0x94, 9, int): share the source file's extents (btrfs, xfs with reflink, bcachefs…).</summary>
    public const int FICLONE = 0x40049409;
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint getdents64(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint flistxattr(int fd, byte* list, nuint size);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint fgetxattr(int fd, byte* name, byte* value, nuint size);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fsetxattr(int fd, byte* name, byte* value, nuint size, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint llistxattr(byte* path, byte* list, nuint size);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint lgetxattr(byte* path, byte* name, byte* value, nuint size);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint copy_file_range(int fdIn, long* offIn, int fdOut, long* offOut, nuint len, uint flags);

    // Tmds.LibC's (its imports set the last P/Invoke error, which Errno reads).
    public static nint pread(int fd, byte* buffer, nuint count, long offset) => (nint)Tmds.Linux.LibC.pread(fd, buffer, (Tmds.Linux.size_t)count, offset);
    public static nint pwrite(int fd, byte* buffer, nuint count, long offset) => (nint)Tmds.Linux.LibC.pwrite(fd, buffer, (Tmds.Linux.size_t)count, offset);

    public static int Errno => Marshal.GetLastPInvokeError();
}
