using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace DiffKeeper.Cli.Tests.Native;

/// <summary>
/// The few libc calls the tests need, taking raw byte paths: file names with invalid UTF-8 cannot pass through
/// .NET's string-based file APIs, and whiteouts, fifos, xattrs and ownership have no managed API at all.
/// Paths are carried as <see cref="RawPath"/> strings (Latin-1: one char per byte, so any byte sequence round-trips).
/// </summary>
internal static unsafe class Posix
{
    public const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFIFO = 0x1000,
        S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFSOCK = 0xC000;
    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    private const int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_TRUNC = 0x200, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    private const int ENODATA = 61, ENOENT = 2, ERANGE = 34, O_APPEND = 0x400;
    public const int EXDEV = 18;

    // Tmds.LibC (0.5) has no xattr calls, no opendir/readdir and no rename: declared here. The rest is Tmds.Linux.LibC's.
    [DllImport("libc", SetLastError = true)] private static extern int lsetxattr(byte* path, byte* name, byte* value, nint size, int flags);
    [DllImport("libc", SetLastError = true)] private static extern nint lgetxattr(byte* path, byte* name, byte* value, nint size);
    [DllImport("libc", SetLastError = true)] private static extern nint llistxattr(byte* path, byte* list, nint size);
    [DllImport("libc", SetLastError = true)] private static extern nint opendir(byte* path);
    [DllImport("libc", SetLastError = true)] private static extern byte* readdir(nint dir);
    [DllImport("libc", SetLastError = true)] private static extern int closedir(nint dir);
    [DllImport("libc", SetLastError = true)] private static extern int rename(byte* oldPath, byte* newPath);
    [DllImport("libc", SetLastError = true)] private static extern int lremovexattr(byte* path, byte* name);

    public readonly record struct Stat(uint Mode, uint Uid, uint Gid, ulong Ino, ulong Dev, ulong Nlink, ulong Rdev,
        long Size, long Blocks, long MtimeNs)
    {
        public uint Type => Mode & S_IFMT;
        public uint Permissions => Mode & 0xFFF;
        public (uint Major, uint Minor) Device =>
            ((uint)(((Rdev >> 32) & 0xFFFFF000) | ((Rdev >> 8) & 0xFFF)), (uint)(((Rdev >> 12) & 0xFFFFFF00) | (Rdev & 0xFF)));
    }

    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);

    /// <summary>Null-terminated bytes of a raw path.</summary>
    private static byte[] Z(string rawPath)
    {
        var bytes = new byte[rawPath.Length + 1];
        for (int i = 0; i < rawPath.Length; i++)
        {
            char c = rawPath[i];
            if (c > 0xFF) throw new ArgumentException($"not a raw (Latin-1) path: {rawPath}");
            bytes[i] = (byte)c;
        }
        return bytes;
    }

    private static Exception Fail(string what, string path) =>
        new IOException($"{what}({RawPath.Display(path)}): errno {Marshal.GetLastPInvokeError()} " +
                        $"({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");

    public static Stat? LStatOrNull(string path)
    {
        stat st;
        fixed (byte* p = Z(path))
            if (lstat(p, &st) != 0)
            {
                if (Marshal.GetLastPInvokeError() == ENOENT) return null;
                throw Fail("lstat", path);
            }
        return new Stat((ushort)st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_dev, st.st_nlink, st.st_rdev, st.st_size, st.st_blocks,
            st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec);
    }

    public static Stat LStat(string path) => LStatOrNull(path) ?? throw new FileNotFoundException(RawPath.Display(path));

    public static byte[] ReadFile(string path)
    {
        int fd;
        fixed (byte* p = Z(path)) fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) throw Fail("open", path);
        try
        {
            var ms = new MemoryStream();
            var buf = new byte[1 << 16];
            fixed (byte* b = buf)
                while (true)
                {
                    long n = read(fd, b, buf.Length);
                    if (n < 0) throw Fail("read", path);
                    if (n == 0) break;
                    ms.Write(buf, 0, (int)n);
                }
            return ms.ToArray();
        }
        finally { close(fd); }
    }

    public static void WriteFile(string path, ReadOnlySpan<byte> data, uint mode = 0x1A4)
    {
        int fd;
        fixed (byte* p = Z(path)) fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (ushort)mode);
        if (fd < 0) throw Fail("open", path);
        try
        {
            fixed (byte* d = data)
            {
                int done = 0;
                while (done < data.Length)
                {
                    long n = write(fd, d + done, data.Length - done);
                    if (n <= 0) throw Fail("write", path);
                    done += (int)n;
                }
            }
        }
        finally { close(fd); }
    }

    /// <summary>Writes at an offset without truncating (an in-place overwrite), or at the end with <paramref name="append"/>.</summary>
    public static void WriteAt(string path, long offset, ReadOnlySpan<byte> data, bool append = false)
    {
        int fd;
        fixed (byte* p = Z(path)) fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : 0), 0);
        if (fd < 0) throw Fail("open", path);
        try
        {
            fixed (byte* d = data)
            {
                long n = append ? write(fd, d, data.Length) : pwrite(fd, d, data.Length, offset);
                if (n != data.Length) throw Fail("write", path);
            }
        }
        finally { close(fd); }
    }

    public static void Truncate(string path, long length)
    {
        fixed (byte* p = Z(path)) if (truncate(p, length) != 0) throw Fail("truncate", path);
    }

    /// <summary>rename(2); returns the errno (0 on success) so a caller can fall back the way mv does on EXDEV.</summary>
    public static int Rename(string from, string to)
    {
        fixed (byte* a = Z(from)) fixed (byte* b = Z(to))
            return rename(a, b) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static void RemoveXattr(string path, string name)
    {
        fixed (byte* p = Z(path)) fixed (byte* n = Z(name))
            if (lremovexattr(p, n) != 0) throw Fail("lremovexattr " + name, path);
    }

    public static void MkDir(string path, uint mode = 0x1ED)
    {
        fixed (byte* p = Z(path)) if (mkdir(p, (ushort)mode) != 0) throw Fail("mkdir", path);
    }

    public static void Symlink(string target, string path)
    {
        fixed (byte* t = Z(target)) fixed (byte* p = Z(path)) if (symlink(t, p) != 0) throw Fail("symlink", path);
    }

    public static void HardLink(string existing, string path)
    {
        fixed (byte* e = Z(existing)) fixed (byte* p = Z(path)) if (link(e, p) != 0) throw Fail("link", path);
    }

    public static void MkNod(string path, uint typeAndMode, uint major = 0, uint minor = 0)
    {
        fixed (byte* p = Z(path)) if (mknod(p, (ushort)typeAndMode, MakeDev(major, minor)) != 0) throw Fail("mknod", path);
    }

    /// <summary>An overlayfs whiteout: a character device 0:0.</summary>
    public static void MkWhiteout(string path) => MkNod(path, S_IFCHR, 0, 0);

    public static void Chmod(string path, uint mode)
    {
        fixed (byte* p = Z(path)) if (chmod(p, (ushort)mode) != 0) throw Fail("chmod", path);
    }

    public static void LChown(string path, uint uid, uint gid)
    {
        fixed (byte* p = Z(path)) if (lchown(p, uid, gid) != 0) throw Fail("lchown", path);
    }

    public static void Unlink(string path)
    {
        fixed (byte* p = Z(path)) if (unlink(p) != 0) throw Fail("unlink", path);
    }

    public static void RmDir(string path)
    {
        fixed (byte* p = Z(path)) if (rmdir(p) != 0) throw Fail("rmdir", path);
    }

    public static string ReadLink(string path)
    {
        var buf = new byte[4096];
        nint n;
        fixed (byte* p = Z(path)) fixed (byte* b = buf) n = (nint)(long)readlink(p, b, buf.Length);
        if (n < 0) throw Fail("readlink", path);
        return RawPath.FromBytes(buf.AsSpan(0, (int)n));
    }

    /// <summary>Sets the modification time (and the access time to the same value) without following symlinks.</summary>
    public static void SetMtime(string path, long mtimeNs)
    {
        var t = stackalloc timespec[2];
        t[0] = t[1] = new timespec { tv_sec = (time_t)Math.DivRem(mtimeNs, 1_000_000_000, out long ns), tv_nsec = (long_t)ns };
        fixed (byte* p = Z(path)) if (utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW) != 0) throw Fail("utimensat", path);
    }

    public static void SetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = Z(path)) fixed (byte* n = Z(name)) fixed (byte* v = value)
            if (lsetxattr(p, n, v, value.Length, 0) != 0) throw Fail("lsetxattr " + name, path);
    }

    public static SortedDictionary<string, byte[]> ListXattrs(string path)
    {
        var result = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        byte[] z = Z(path);
        var list = new byte[65536];
        nint n;
        fixed (byte* p = z) fixed (byte* l = list) n = llistxattr(p, l, list.Length);
        if (n < 0) throw Fail("llistxattr", path);
        foreach (var name in Encoding.Latin1.GetString(list, 0, (int)n).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var value = new byte[65536];
            nint vn;
            fixed (byte* p = z) fixed (byte* nm = Z(name)) fixed (byte* v = value) vn = lgetxattr(p, nm, v, value.Length);
            if (vn < 0)
            {
                if (Marshal.GetLastPInvokeError() == ENODATA) continue;
                throw Fail("lgetxattr " + name, path);
            }
            result[name] = value.AsSpan(0, (int)vn).ToArray();
        }
        return result;
    }

    /// <summary>Entry names of a directory (raw), without "." and "..".</summary>
    public static List<string> ListDir(string path)
    {
        nint dir;
        fixed (byte* p = Z(path)) dir = opendir(p);
        if (dir == 0) throw Fail("opendir", path);
        var names = new List<string>();
        try
        {
            byte* ent;
            // struct dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            while ((ent = readdir(dir)) != null)
            {
                byte* name = ent + 19;
                int len = 0;
                while (name[len] != 0) len++;
                var s = RawPath.FromBytes(new ReadOnlySpan<byte>(name, len));
                if (s is "." or "..") continue;
                names.Add(s);
            }
        }
        finally { closedir(dir); }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Removes a tree that may contain anything (non-UTF-8 names, fifos, read-only dirs).</summary>
    public static void RemoveTree(string path)
    {
        var st = LStatOrNull(path);
        if (st is null) return;
        if (st.Value.Type == S_IFDIR)
        {
            Chmod(path, 0x1C0);
            foreach (var name in ListDir(path)) RemoveTree(path + "/" + name);
            RmDir(path);
        }
        else Unlink(path);
    }

    public static bool SendSignal(int pid, int signal) => kill(pid, signal) == 0;

    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;
}
