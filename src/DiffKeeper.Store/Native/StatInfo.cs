namespace DiffKeeper.Store.Native;

/// <summary>What lstat tells us about one entry, from statx (one layout on every architecture).</summary>
public readonly record struct StatInfo(
    uint Mode, uint Uid, uint Gid, ulong Size, ulong Inode, uint Nlink,
    long MtimeNs, long CtimeNs, uint RdevMajor, uint RdevMinor, uint DevMajor, uint DevMinor, ulong Blocks)
{
    public uint FileType => Mode & Libc.S_IFMT;
    public bool IsDirectory => FileType == Libc.S_IFDIR;
    public bool IsRegular => FileType == Libc.S_IFREG;
    public bool IsSymlink => FileType == Libc.S_IFLNK;
    /// <summary>Overlay's whiteout: a character device 0:0.</summary>
    public bool IsWhiteout => FileType == Libc.S_IFCHR && RdevMajor == 0 && RdevMinor == 0;

    private const uint StatxBasicStats = 0x7ff;

    public static unsafe bool TryLstat(int dirfd, ReadOnlySpan<byte> nameZ, out StatInfo info, out int errno)
    {
        byte* buf = stackalloc byte[256];
        fixed (byte* p = nameZ)
        {
            int flags = Libc.AT_SYMLINK_NOFOLLOW | (nameZ.Length <= 1 ? Libc.AT_EMPTY_PATH : 0);
            if (Libc.statx(dirfd, p, flags, StatxBasicStats, buf) != 0)
            {
                errno = Libc.Errno;
                info = default;
                return false;
            }
        }
        errno = 0;
        info = FromStatx(buf);
        return true;
    }

    public static unsafe StatInfo Fstat(int fd)
    {
        byte* buf = stackalloc byte[256];
        byte empty = 0;
        if (Libc.statx(fd, &empty, Libc.AT_EMPTY_PATH, StatxBasicStats, buf) != 0)
            throw new IOException("fstat: " + Libc.ErrorText(Libc.Errno));
        return FromStatx(buf);
    }

    private static unsafe StatInfo FromStatx(byte* b)
    {
        static long Ts(byte* t) => *(long*)t * 1_000_000_000L + *(uint*)(t + 8);
        return new StatInfo(
            Mode: *(ushort*)(b + 28), Uid: *(uint*)(b + 20), Gid: *(uint*)(b + 24), Size: *(ulong*)(b + 40),
            Inode: *(ulong*)(b + 32), Nlink: *(uint*)(b + 16), MtimeNs: Ts(b + 112), CtimeNs: Ts(b + 96),
            RdevMajor: *(uint*)(b + 128), RdevMinor: *(uint*)(b + 132), DevMajor: *(uint*)(b + 136),
            DevMinor: *(uint*)(b + 140), Blocks: *(ulong*)(b + 48));
    }
}
