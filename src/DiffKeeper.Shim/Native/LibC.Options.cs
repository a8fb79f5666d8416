using System.Runtime.InteropServices;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Shim.Native;

/// <summary>libc calls for the runtime options: stdin checks, I/O ownership (IoUid/IoGid), cgroup mode.</summary>
internal static unsafe partial class LibC
{
    public static int isatty(int fd) => Ret(T.isatty(fd));
    public static int fchown(int fd, uint owner, uint group) => Ret(T.fchown(fd, owner, group));

    // Tmds.LibC 0.5 has no statfs: declared here.
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
