using System.Buffers;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Recorder.Native;

/// <summary>One directory entry as getdents64 gives it: the raw name and the inode (no stat needed).</summary>
internal readonly record struct Dirent(byte[] Name, ulong Inode, byte Type)
{
    public const byte DT_DIR = 4, DT_REG = 8, DT_LNK = 10, DT_CHR = 2, DT_UNKNOWN = 0;
}

/// <summary>
/// Lists a directory with getdents64, keeping each entry's inode: a rescan learns which names are new, gone or
/// the same inode under another name (a rename) without a stat per entry.
/// </summary>
internal static unsafe class Dirents
{
    /// <summary>The entries of <paramref name="dirfd"/> without "." and "..". Throws IOException on a read error.</summary>
    public static List<Dirent> Read(int dirfd)
    {
        var list = new List<Dirent>();
        byte[] buf = ArrayPool<byte>.Shared.Rent(32 * 1024);
        try
        {
            fixed (byte* p = buf)
            {
                while (true)
                {
                    nint n = Libc.getdents64(dirfd, p, buf.Length);
                    if (n < 0) throw new IOException("getdents64: " + Libc.ErrorText(Libc.Errno));
                    if (n == 0) break;
                    for (int off = 0; off < n;)
                    {
                        ulong ino = *(ulong*)(p + off);
                        ushort reclen = *(ushort*)(p + off + 16);
                        byte type = p[off + 18];
                        byte* name = p + off + 19;
                        int len = 0;
                        while (name[len] != 0) len++;
                        bool dots = (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
                        if (!dots) list.Add(new Dirent(new ReadOnlySpan<byte>(name, len).ToArray(), ino, type));
                        off += reclen;
                    }
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
        return list;
    }

    /// <summary>Opens a directory (no symlink followed at the last component); -1 with errno set on failure.</summary>
    public static int OpenDirectory(ReadOnlySpan<byte> absPath)
    {
        var z = Libc.CString(absPath);
        fixed (byte* p = z) return Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
    }

    public static bool TryLstat(ReadOnlySpan<byte> absPath, out StatInfo st)
    {
        var z = Libc.CString(absPath);
        return StatInfo.TryLstat(Libc.AT_FDCWD, z, out st, out _);
    }
}

internal static unsafe class Stat
{
    /// <summary>The inode of what <paramref name="pathZ"/> resolves to (symlinks followed); 0 when it cannot be stat'ed.</summary>
    public static ulong InodeFollow(byte[] pathZ)
    {
        byte* buf = stackalloc byte[256];
        fixed (byte* p = pathZ)
        {
            if (Libc.statx(Libc.AT_FDCWD, p, 0, 0x100 /* STATX_INO */, buf) != 0) return 0;
        }
        return *(ulong*)(buf + 32); // struct statx: stx_ino at offset 32
    }
}

internal static unsafe class Birth
{
    /// <summary>
    /// The inode's birth time (statx STATX_BTIME), 0 when the file system does not keep one. An inode number freed
    /// by a delete is soon reused by a create: the birth time tells a reused inode from a renamed one.
    /// </summary>
    public static long TimeOf(ReadOnlySpan<byte> absPath)
    {
        var z = Libc.CString(absPath);
        byte* buf = stackalloc byte[256];
        fixed (byte* p = z)
        {
            if (Libc.statx(Libc.AT_FDCWD, p, Libc.AT_SYMLINK_NOFOLLOW, 0x800 /* STATX_BTIME */, buf) != 0) return 0;
        }
        if ((*(uint*)buf & 0x800) == 0) return 0;
        return *(long*)(buf + 80) * 1_000_000_000L + *(uint*)(buf + 88); // stx_btime: tv_sec, tv_nsec
    }
}
