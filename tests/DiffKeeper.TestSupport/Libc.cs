using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace DiffKeeper.TestSupport;

/// <summary>
/// The libc calls the tests make that .NET has no API for (signals to any pid, FIFOs, unmounts, device numbers, the
/// (dev, ino) of a path), on Tmds.LibC's declarations (Tmds.Linux.LibC: call it directly for anything else it has).
/// Paths here are strings (UTF-8); byte-path helpers stay with the tests that make non-UTF-8 names.
/// </summary>
public static unsafe partial class Libc
{
    public const int SIGKILL = 9, SIGTERM = 15;
    public const int ESRCH = 3;
    public const int MNT_DETACH = 2;
    public const int O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;

    public static bool IsRoot => LibC.geteuid() == 0u;

    /// <summary>errno of the last failed call.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>kill(2): 0, or -1 with <see cref="Errno"/> set.</summary>
    public static int Kill(int pid, int signal) => LibC.kill(pid, signal);

    /// <summary>
    /// True while <paramref name="pid"/> exists and is not a zombie: a process re-parented away from us may be slow
    /// (or never) to be reaped, so <c>kill -0</c> alone could see a corpse.
    /// </summary>
    public static bool IsAlive(int pid)
    {
        if (Kill(pid, 0) != 0) return Errno != ESRCH;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static void MkFifo(string path, uint mode = 0x180 /* 0600 */)
    {
        int rc;
        fixed (byte* p = Z(path)) rc = LibC.mkfifo(p, (ushort)mode);
        if (rc != 0) throw Failure("mkfifo", path);
    }

    /// <summary>open(2) of a string path: the fd, or -1 with <see cref="Errno"/> set.</summary>
    public static int Open(string path, int flags, uint mode = 0)
    {
        fixed (byte* p = Z(path)) return LibC.open(p, flags, (ushort)mode);
    }

    public static int Close(int fd) => LibC.close(fd);

    /// <summary>umount2(2): 0, or -1 with <see cref="Errno"/> set.</summary>
    public static int Umount2(string target, int flags)
    {
        fixed (byte* p = Z(target)) return LibC.umount2(p, flags);
    }

    /// <summary>(st_dev, st_ino) of a path, not following a final symlink.</summary>
    public static (ulong Dev, ulong Ino) DeviceAndInode(string path)
    {
        stat st;
        int rc;
        fixed (byte* p = Z(path)) rc = LibC.lstat(p, &st);
        if (rc != 0) throw Failure("lstat", path);
        return (st.st_dev, st.st_ino);
    }

    /// <summary>Major and minor as one dev_t, by glibc itself (what makedev(3) expands to).</summary>
    public static ulong MakeDev(uint major, uint minor) => gnu_dev_makedev(major, minor);

    /// <summary>A dev_t's major and minor, by glibc itself (major(3), minor(3)).</summary>
    public static (uint Major, uint Minor) SplitDev(ulong dev) => (gnu_dev_major(dev), gnu_dev_minor(dev));

    // Not in Tmds.LibC (0.5): makedev, major and minor are macros there.
    [LibraryImport("libc")] private static partial ulong gnu_dev_makedev(uint major, uint minor);
    [LibraryImport("libc")] private static partial uint gnu_dev_major(ulong dev);
    [LibraryImport("libc")] private static partial uint gnu_dev_minor(ulong dev);

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="path"/>.</summary>
    public static byte[] Z(string path) => Encoding.UTF8.GetBytes(path + "\0");

    private static IOException Failure(string call, string path)
    {
        var errno = Errno;
        return new IOException($"{call} {path}: {ErrorText(errno)} (errno {errno})");
    }
}
