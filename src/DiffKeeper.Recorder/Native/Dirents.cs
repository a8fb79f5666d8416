using DiffKeeper.Store.Native;

namespace DiffKeeper.Recorder.Native;

/// <summary>
/// Opening and stat-ing the directories the recorder rescans; the listing itself is the store's
/// <see cref="DirectoryReader.ReadEntries"/>.
/// </summary>
internal static unsafe class Dirents
{
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
