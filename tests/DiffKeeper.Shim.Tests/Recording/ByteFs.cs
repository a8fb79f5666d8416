using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Tmds.Linux;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Shim.Tests.Recording;

/// <summary>
/// Byte-path file-system calls for the freeze tests, written independently of the shim's freezer (libc's
/// opendir/readdir and lstat instead of getdents64 and statx), so a shared mistake cannot make a wrong freeze look
/// right. Names are bytes: the tests create names that are not UTF-8 and names with newlines. x86_64 struct stat.
/// </summary>
internal static unsafe partial class ByteFs
{
    // Tmds.LibC 0.5 has no opendir/readdir/closedir and no xattr calls; lstat is declared here too because the tests
    // read the kernel's struct stat (x86_64) from raw bytes, not Tmds.LibC's struct.
    [LibraryImport("libc", SetLastError = true)] private static partial nint opendir(byte* path);
    [LibraryImport("libc", SetLastError = true)] private static partial byte* readdir(nint dir);
    [LibraryImport("libc", SetLastError = true)] private static partial int closedir(nint dir);
    [LibraryImport("libc", SetLastError = true)] private static partial int lstat(byte* path, byte* buf);
    [LibraryImport("libc", SetLastError = true)] private static partial nint llistxattr(byte* path, byte* list, nuint size);
    [LibraryImport("libc", SetLastError = true)] private static partial nint lgetxattr(byte* path, byte* name, byte* value, nuint size);
    [LibraryImport("libc", SetLastError = true)] private static partial int lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    // The rest through Tmds.LibC (its imports set the last P/Invoke error, which Check reads).
    private static nint readlink(byte* path, byte* buf, nuint size) => (nint)T.readlink(path, buf, (size_t)size);
    private static int open(byte* path, int flags, int mode) => T.open(path, flags, (mode_t)(uint)mode);
    private static int close(int fd) => T.close(fd);
    private static nint read(int fd, byte* buf, nuint count) => (nint)T.read(fd, buf, (size_t)count);
    private static nint write(int fd, byte* buf, nuint count) => (nint)T.write(fd, buf, (size_t)count);
    private static int mkdir(byte* path, int mode) => T.mkdir(path, (mode_t)(uint)mode);
    private static int mkfifo(byte* path, int mode) => T.mkfifo(path, (mode_t)(uint)mode);
    private static int symlink(byte* target, byte* path) => T.symlink(target, path);
    private static int link(byte* oldPath, byte* newPath) => T.link(oldPath, newPath);
    private static int lchown(byte* path, uint uid, uint gid) => T.lchown(path, uid, gid);
    private static int chmod(byte* path, int mode) => T.chmod(path, (mode_t)(uint)mode);
    private static int utimensat(int dirfd, byte* path, long* times, int flags) => T.utimensat(dirfd, path, (timespec*)times, flags);
    private static int ftruncate(int fd, long length) => T.ftruncate(fd, length);
    private static nint pwrite(int fd, byte* buf, nuint count, long offset) => (nint)T.pwrite(fd, buf, (size_t)count, offset);

    public static byte[] Z(byte[] path) => path.Length > 0 && path[^1] == 0 ? path : [.. path, 0];
    public static byte[] P(string path) => Z(Encoding.UTF8.GetBytes(path));
    public static byte[] Cat(byte[] dir, byte[] name) => Z([.. dir[..^(dir[^1] == 0 ? 1 : 0)], (byte)'/', .. name[..^(name.Length > 0 && name[^1] == 0 ? 1 : 0)]]);

    private static void Check(int rc, string what, byte[] path)
    {
        if (rc != 0) throw new IOException($"{what} {Show(path)}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    public static string Show(byte[] path) => string.Concat(path.TakeWhile(b => b != 0).Select(b => b is >= 0x20 and < 0x7f ? ((char)b).ToString() : $"\\x{b:x2}"));

    public static void WriteFile(byte[] path, byte[] content, int mode = 0x1a4)
    {
        fixed (byte* p = Z(path))
        {
            int fd = open(p, 1 | 0x40 | 0x200 /* O_WRONLY|O_CREAT|O_TRUNC */, mode);
            if (fd < 0) Check(-1, "open", path);
            fixed (byte* c = content) if (content.Length > 0 && write(fd, c, (nuint)content.Length) != content.Length) { close(fd); Check(-1, "write", path); }
            close(fd);
        }
    }

    public static void AppendFile(byte[] path, byte[] content)
    {
        fixed (byte* p = Z(path))
        {
            int fd = open(p, 1 | 0x400 /* O_WRONLY|O_APPEND */, 0);
            if (fd < 0) Check(-1, "open", path);
            fixed (byte* c = content) write(fd, c, (nuint)content.Length);
            close(fd);
        }
    }

    /// <summary>A file of <paramref name="size"/> bytes that holds data only in its last 4 KiB (the rest is a hole).</summary>
    public static void WriteSparse(byte[] path, long size)
    {
        fixed (byte* p = Z(path))
        {
            int fd = open(p, 1 | 0x40 | 0x200, 0x1a4);
            if (fd < 0) Check(-1, "open", path);
            Check(ftruncate(fd, size), "truncate", path);
            var tail = Enumerable.Repeat((byte)'s', 4096).ToArray();
            fixed (byte* t = tail) pwrite(fd, t, 4096, size - 4096);
            close(fd);
        }
    }

    public static void Mkdir(byte[] path, int mode = 0x1ed) { fixed (byte* p = Z(path)) Check(mkdir(p, mode), "mkdir", path); }
    public static void Mkfifo(byte[] path) { fixed (byte* p = Z(path)) Check(mkfifo(p, 0x1a0), "mkfifo", path); }
    public static void Symlink(string target, byte[] path) { fixed (byte* t = P(target)) fixed (byte* p = Z(path)) Check(symlink(t, p), "symlink", path); }
    public static void Link(byte[] oldPath, byte[] newPath) { fixed (byte* o = Z(oldPath)) fixed (byte* n = Z(newPath)) Check(link(o, n), "link", newPath); }
    public static void Chown(byte[] path, uint uid, uint gid) { fixed (byte* p = Z(path)) Check(lchown(p, uid, gid), "lchown", path); }
    public static void Chmod(byte[] path, int mode) { fixed (byte* p = Z(path)) Check(chmod(p, mode), "chmod", path); }

    public static void SetXattr(byte[] path, string name, byte[] value)
    {
        fixed (byte* p = Z(path)) fixed (byte* n = P(name)) fixed (byte* v = value)
            Check(lsetxattr(p, n, v, (nuint)value.Length, 0), $"setxattr {name}", path);
    }

    public static void SetMtime(byte[] path, long seconds, long nanos)
    {
        long* times = stackalloc long[4];
        times[0] = 0; times[1] = (1L << 30) - 2; // UTIME_OMIT: atime untouched
        times[2] = seconds; times[3] = nanos;
        fixed (byte* p = Z(path)) Check(utimensat(-100, p, times, 0x100), "utimensat", path);
    }

    /// <summary>One entry of a tree, as the freeze must reproduce it.</summary>
    public sealed record Entry(string Path, char Type, uint Mode, uint Uid, uint Gid, long Size, ulong Rdev, long MtimeSec, long MtimeNsec,
        string? LinkTarget, string? ContentSha256, string Xattrs, ulong Ino, ulong Nlink, long Blocks)
    {
        /// <summary>What must be equal between the upper dir and its freeze (inode numbers aside).</summary>
        public string Comparable => $"{Type} {Convert.ToString(Mode, 8)} {Uid}:{Gid} size={(Type == 'd' ? 0 : Size)} rdev={Rdev} mtime={MtimeSec}.{MtimeNsec:D9} link={LinkTarget} sha={ContentSha256} xattrs={Xattrs}";
    }

    public static Dictionary<string, Entry> Snapshot(string root)
    {
        var result = new Dictionary<string, Entry>();
        Walk(P(root), "", result);
        return result;
    }

    private static void Walk(byte[] dir, string rel, Dictionary<string, Entry> into)
    {
        into[rel == "" ? "/" : rel] = Describe(dir, rel == "" ? "/" : rel);
        var names = new List<byte[]>();
        fixed (byte* p = Z(dir))
        {
            nint d = opendir(p);
            if (d == 0) Check(-1, "opendir", dir);
            try
            {
                byte* e;
                while ((e = readdir(d)) != null)
                {
                    // glibc x86_64 struct dirent: d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name[256]
                    byte* name = e + 19;
                    int len = 0;
                    while (name[len] != 0) len++;
                    var bytes = new ReadOnlySpan<byte>(name, len).ToArray();
                    if (bytes is [(byte)'.'] or [(byte)'.', (byte)'.']) continue;
                    names.Add(bytes);
                }
            }
            finally { closedir(d); }
        }
        foreach (var name in names)
        {
            var path = Cat(dir, name);
            var childRel = rel + "/" + Show(name);
            var entry = Describe(path, childRel);
            if (entry.Type == 'd') Walk(path, childRel, into);
            else into[childRel] = entry;
        }
    }

    private static Entry Describe(byte[] path, string rel)
    {
        byte* st = stackalloc byte[256];
        fixed (byte* p = Z(path)) Check(lstat(p, st), "lstat", path);
        ulong ino = *(ulong*)(st + 8), nlink = *(ulong*)(st + 16);
        uint mode = *(uint*)(st + 24), uid = *(uint*)(st + 28), gid = *(uint*)(st + 32);
        ulong rdev = *(ulong*)(st + 40);
        long size = *(long*)(st + 48), blocks = *(long*)(st + 64);
        long mtimeSec = *(long*)(st + 88), mtimeNsec = *(long*)(st + 96);
        char type = (mode & 0xF000) switch
        {
            0x4000 => 'd', 0x8000 => 'f', 0xA000 => 'l', 0x2000 => 'c', 0x6000 => 'b', 0x1000 => 'p', 0xC000 => 's', _ => '?',
        };
        string? target = null, sha = null;
        if (type == 'l')
        {
            var buf = new byte[4096];
            fixed (byte* p = Z(path)) fixed (byte* b = buf)
            {
                nint n = readlink(p, b, (nuint)buf.Length);
                target = Show(buf[..(int)n]);
            }
        }
        if (type == 'f') sha = Convert.ToHexStringLower(SHA256.HashData(ReadAll(path)));
        return new Entry(rel, type, mode & 0xFFF, uid, gid, size, rdev, mtimeSec, mtimeNsec, target, sha, Xattrs(path), ino, nlink, blocks);
    }

    public static byte[] ReadAll(byte[] path)
    {
        var ms = new MemoryStream();
        var buf = new byte[65536];
        fixed (byte* p = Z(path)) fixed (byte* b = buf)
        {
            int fd = open(p, 0x20000 /* O_RDONLY|O_NOFOLLOW */, 0);
            if (fd < 0) Check(-1, "open", path);
            nint n;
            while ((n = read(fd, b, (nuint)buf.Length)) > 0) ms.Write(buf, 0, (int)n);
            close(fd);
        }
        return ms.ToArray();
    }

    /// <summary>"name=hexvalue;…" sorted by name.</summary>
    public static string Xattrs(byte[] path)
    {
        var pairs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        fixed (byte* p = Z(path))
        {
            nint size = llistxattr(p, null, 0);
            if (size <= 0) return "";
            var list = new byte[size];
            fixed (byte* l = list) size = llistxattr(p, l, (nuint)list.Length);
            int start = 0;
            for (int i = 0; i < size; i++)
            {
                if (list[i] != 0) continue;
                var name = list[start..(i + 1)];
                start = i + 1;
                fixed (byte* n = name)
                {
                    nint vlen = lgetxattr(p, n, null, 0);
                    var value = new byte[Math.Max(0, vlen)];
                    fixed (byte* v = value) if (vlen > 0) lgetxattr(p, n, v, (nuint)value.Length);
                    pairs[Encoding.UTF8.GetString(name, 0, name.Length - 1)] = Convert.ToHexStringLower(value);
                }
            }
        }
        return string.Join(";", pairs.Select(kv => kv.Key + "=" + kv.Value));
    }
}
