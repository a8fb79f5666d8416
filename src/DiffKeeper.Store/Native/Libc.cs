using System.Runtime.InteropServices;
using Tmds.Linux;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Store.Native;

/// <summary>
/// The few libc calls the store needs that .NET does not expose with raw-byte paths, uid/gid or xattrs.
/// Every path argument is a NUL-terminated byte string: names are never decoded.
/// </summary>
public static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200;
    public const int O_NOFOLLOW = 0x20000, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000, O_NOATIME = 0x40000;
    public const int O_PATH = 0x200000;
    /// <summary>O_DIRECT: 0x4000 on x86-64, 0x10000 on arm64 (the only flag here that differs between the two we build).</summary>
    public static readonly int O_DIRECT = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x10000 : 0x4000;
    public const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;
    public const int ENOENT = 2, EINTR = 4, EEXIST = 17, ENOTDIR = 20, ENXIO = 6, ERANGE = 34, ENODATA = 61, ENOTSUP = 95, EPERM = 1, ELOOP = 40;
    public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFBLK = 0x6000,
        S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFIFO = 0x1000;

    // Through Tmds.LibC, in our raw-pointer signatures. Its imports set the last P/Invoke error (SetLastError), so
    // Errno below works for them as for our own declarations.
    public static int openat(int dirfd, byte* path, int flags, uint mode) => T.openat(dirfd, path, flags, (mode_t)mode);
    public static int close(int fd) => T.close(fd);
    public static nint read(int fd, byte* buf, nint count) => (nint)T.read(fd, buf, (size_t)count);
    public static nint write(int fd, byte* buf, nint count) => (nint)T.write(fd, buf, (size_t)count);
    public static nint pread(int fd, byte* buf, nint count, long offset) => (nint)T.pread(fd, buf, (size_t)count, offset);
    public static nint pwrite(int fd, byte* buf, nint count, long offset) => (nint)T.pwrite(fd, buf, (size_t)count, offset);
    public static int fchown(int fd, uint uid, uint gid) => T.fchown(fd, uid, gid);
    public static long lseek(int fd, long offset, int whence) => T.lseek(fd, offset, whence);
    public static int ftruncate(int fd, long length) => T.ftruncate(fd, length);
    /// <summary>Returns the error number itself (posix_fadvise does not set errno).</summary>
    public static int posix_fadvise(int fd, long offset, long len, int advice) => T.posix_fadvise(fd, offset, len, advice);
    public const int POSIX_FADV_WILLNEED = 3;
    public static int statx(int dirfd, byte* path, int flags, uint mask, byte* buf) => T.statx(dirfd, path, flags, mask, (statx*)buf);
    public static nint readlinkat(int dirfd, byte* path, byte* buf, nint size) => (nint)T.readlinkat(dirfd, path, buf, (size_t)size);
    public static int mkdirat(int dirfd, byte* path, uint mode) => T.mkdirat(dirfd, path, (mode_t)mode);
    public static int mknodat(int dirfd, byte* path, uint mode, ulong dev) => T.mknodat(dirfd, path, (mode_t)mode, dev);
    public static int symlinkat(byte* target, int dirfd, byte* path) => T.symlinkat(target, dirfd, path);
    public static int linkat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, int flags) => T.linkat(olddirfd, oldpath, newdirfd, newpath, flags);
    public static int fchownat(int dirfd, byte* path, uint uid, uint gid, int flags) => T.fchownat(dirfd, path, uid, gid, flags);
    public static int fchmod(int fd, uint mode) => T.fchmod(fd, (mode_t)mode);
    public static uint umask(uint mask) => (uint)T.umask((mode_t)mask);
    public static int fchmodat(int dirfd, byte* path, uint mode, int flags) => T.fchmodat(dirfd, path, (mode_t)mode, flags);
    /// <param name="times">Two struct timespec (seconds, nanoseconds) as four longs.</param>
    public static int utimensat(int dirfd, byte* path, long* times, int flags) => T.utimensat(dirfd, path, (timespec*)times, flags);
    public static int futimens(int fd, long* times) => T.futimens(fd, (timespec*)times);
    public static int geteuid() => (int)(uint)T.geteuid();

    // Tmds.LibC 0.5 has no getdents64, no xattr calls and no flock: declared here.
    [LibraryImport(Lib, SetLastError = true)] public static partial int flock(int fd, int operation);
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    [LibraryImport(Lib, SetLastError = true)] public static partial nint getdents64(int fd, byte* buf, nint count);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint flistxattr(int fd, byte* list, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint fgetxattr(int fd, byte* name, byte* value, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial int fsetxattr(int fd, byte* name, byte* value, nint size, int flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint llistxattr(byte* path, byte* list, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint lgetxattr(byte* path, byte* name, byte* value, nint size);
    [LibraryImport(Lib, SetLastError = true)] public static partial int lsetxattr(byte* path, byte* name, byte* value, nint size, int flags);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>
    /// Opens a file to read its content without following a final symlink and, where allowed, without touching its
    /// atime (O_NOATIME is refused with EPERM for a file we do not own unless we have CAP_FOWNER: then without it).
    /// Returns the fd, or -1 with <see cref="Errno"/> set.
    /// </summary>
    public static int OpenToRead(byte* pathZ)
    {
        int fd = openat(AT_FDCWD, pathZ, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME, 0);
        return fd < 0 && Errno == EPERM ? openat(AT_FDCWD, pathZ, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0) : fd;
    }

    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) |
        ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>Copies a path into a NUL-terminated buffer (stackalloc or pooled by the caller).</summary>
    public static byte[] CString(ReadOnlySpan<byte> path)
    {
        var b = new byte[path.Length + 1];
        path.CopyTo(b);
        return b;
    }
}
