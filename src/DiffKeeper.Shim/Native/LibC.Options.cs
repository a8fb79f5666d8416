using System.Runtime.InteropServices;

namespace DiffKeeper.Shim.Native;

/// <summary>libc calls for the runtime options: stdin checks, I/O ownership (IoUid/IoGid), cgroup mode.</summary>
internal static unsafe partial class LibC
{
    [LibraryImport(Lib, SetLastError = true)]
    public static partial int isatty(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fchown(int fd, uint owner, uint group);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statfs(string path, byte* buf);

    /// <summary>The file system magic (<c>f_type</c>, the first field of struct statfs) of <paramref name="path"/>, or null.</summary>
    public static long? FileSystemType(string path)
    {
        byte* buf = stackalloc byte[256]; // sizeof(struct statfs) is 120 on x86_64 and aarch64
        if (statfs(path, buf) != 0) return null;
        return *(long*)buf;
    }
}
