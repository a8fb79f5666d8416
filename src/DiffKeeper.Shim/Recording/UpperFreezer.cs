using System.Text;
using DiffKeeper.Shim.Native;
using Tmds.Linux;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Shim.Recording;

/// <summary>What a freeze did: how each entry got into the spool, what failed, and whether it finished in time.</summary>
internal sealed class FreezeResult
{
    public const int MaxErrors = 64;
    public long Linked, Reflinked, Copied, Directories, BytesCopied;
    public bool Complete = true;
    public int ErrorCount;
    public List<string> Errors { get; } = new();
    public TimeSpan Elapsed;
    /// <summary>Why link(2) was not enough, from the first entry that needed a reflink or a copy.</summary>
    public string? FallbackReason;

    /// <summary>The manifest's <c>freeze</c>: the costliest method any entry needed.</summary>
    public string Method => Copied > 0 ? "copy" : Reflinked > 0 ? "reflink" : "hardlink";

    public void Error(string message)
    {
        ErrorCount++;
        // A tree full of unlinkable files must not turn the manifest into megabytes of the same message.
        if (Errors.Count < MaxErrors) Errors.Add(message);
        else if (Errors.Count == MaxErrors) Errors.Add("… further errors omitted");
    }
}

/// <summary>
/// Freezes an overlay upper directory into another directory, quickly and without reading file contents where it
/// can: every non-directory is hard-linked (linkat without AT_SYMLINK_FOLLOW, so a symlink, a whiteout char device,
/// a fifo or a socket is linked as itself: the same inode, no byte copied); directories are re-created with their
/// mode, owner, xattrs (trusted.overlay.opaque and the other trusted.overlay.* included) and times, the times set
/// after the children are in (adding a child changes a directory's mtime). When link(2) is refused (EXDEV: the
/// destination is another file system; EPERM: an immutable file; EMLINK) the entry is reflinked (FICLONE) or copied
/// with its mode, owner, xattrs, times and holes, and hard-link groups are kept among the copies.
///
/// Names are raw bytes all the way (getdents64 → *at calls relative to directory descriptors): an upper dir may hold
/// names that are not UTF-8 or contain newlines, and .NET strings cannot round-trip those.
///
/// Runs in the recorder's safe window (init reaped, rootfs still mounted, nothing writes), bounded by a deadline:
/// past it the freeze stops, says so (<see cref="FreezeResult.Complete"/> false) and the container's teardown goes on.
/// </summary>
internal sealed unsafe class UpperFreezer
{
    private const int DirectoryOpenFlags = 0x10000 /* O_DIRECTORY */ | 0x20000 /* O_NOFOLLOW */ | 0x80000 /* O_CLOEXEC */;
    private const int CopyChunk = 8 << 20;

    private readonly long _deadline;
    private readonly FreezeResult _result = new();
    private readonly byte[] _direntBuffer = new byte[64 * 1024];
    /// <summary>Copied (not linked) inodes with more than one link: (dev, ino) → path of the first copy under the root.</summary>
    private readonly Dictionary<(ulong, ulong), byte[]> _copies = new();
    private int _dstRoot = -1;
    // What the destination file system refused once it refuses for every entry (it is one file system): stop asking.
    private bool _linkRefused, _reflinkRefused, _kernelCopyRefused;
    private byte[]? _copyBuffer;

    private UpperFreezer(long deadlineTicks) => _deadline = deadlineTicks;

    /// <summary>
    /// Freezes <paramref name="upperDir"/> into <paramref name="destination"/>, which must not exist yet (its parent
    /// must). Never throws for a problem inside the tree: those are in the result's errors.
    /// </summary>
    public static FreezeResult Freeze(string upperDir, string destination, TimeSpan budget)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var freezer = new UpperFreezer(Environment.TickCount64 + (long)budget.TotalMilliseconds);
        try
        {
            freezer.Run(upperDir, destination);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            freezer._result.Complete = false;
            freezer._result.Error(e.Message);
        }
        freezer._result.Elapsed = clock.Elapsed;
        return freezer._result;
    }

    private void Run(string upperDir, string destination)
    {
        int src = -1, dst = -1;
        try
        {
            src = OpenDirectory(T.AT_FDCWD, Bytes(upperDir), upperDir);
            var dstPath = Bytes(destination);
            fixed (byte* p = dstPath)
                if (T.mkdirat(T.AT_FDCWD, p, 0x1c0 /* 0700 until its own mode is applied */) != 0)
                    throw new ErrnoException(T.errno, $"mkdir {destination}");
            dst = OpenDirectory(T.AT_FDCWD, dstPath, destination);
            _dstRoot = dst;
            CopyDirectory(src, dst, Array.Empty<byte>());
            ApplyDirectoryMetadata(src, dst, Array.Empty<byte>());
            _result.Directories++;
        }
        finally
        {
            if (src >= 0) T.close(src);
            if (dst >= 0) T.close(dst);
            _dstRoot = -1;
        }
    }

    private bool PastDeadline()
    {
        if (Environment.TickCount64 < _deadline) return false;
        if (_result.Complete)
        {
            _result.Complete = false;
            _result.Error("freeze deadline passed: the frozen tree is partial");
        }
        return true;
    }

    private void CopyDirectory(int src, int dst, byte[] rel)
    {
        foreach (var (name, type) in ReadDirectory(src, rel))
        {
            if (PastDeadline()) return;
            var childRel = Join(rel, name);
            byte kind = type;
            if (kind == FsCalls.DT_UNKNOWN)
            {
                // Some file systems leave d_type out: ask the inode.
                if (!Stat(src, name, childRel, out var st)) continue;
                kind = DirentType(st.stx_mode);
            }
            if (kind == FsCalls.DT_DIR) FreezeDirectory(src, dst, name, childRel);
            else FreezeEntry(src, dst, name, childRel);
        }
    }

    private void FreezeDirectory(int srcParent, int dstParent, byte[] name, byte[] rel)
    {
        fixed (byte* n = name)
            if (T.mkdirat(dstParent, n, 0x1c0) != 0)
            {
                _result.Error($"mkdir {Show(rel)}: {Marshal(T.errno)}");
                return;
            }
        int src = -1, dst = -1;
        try
        {
            src = OpenDirectory(srcParent, name, Show(rel));
            dst = OpenDirectory(dstParent, name, Show(rel));
            CopyDirectory(src, dst, rel);
            ApplyDirectoryMetadata(src, dst, rel);
            _result.Directories++;
        }
        catch (ErrnoException e)
        {
            _result.Error(e.Message);
        }
        finally
        {
            if (src >= 0) T.close(src);
            if (dst >= 0) T.close(dst);
        }
    }

    private void FreezeEntry(int srcDir, int dstDir, byte[] name, byte[] rel)
    {
        int errno = FsErrno.EXDEV;
        if (!_linkRefused)
        {
            fixed (byte* n = name)
            {
                // No AT_SYMLINK_FOLLOW: a symlink is linked as itself, never its target.
                if (T.linkat(srcDir, n, dstDir, n, 0) == 0)
                {
                    _result.Linked++;
                    return;
                }
                errno = T.errno;
            }
            // EXDEV holds for the whole tree; EPERM (an immutable file…) and EMLINK only for this inode.
            if (errno == FsErrno.EXDEV) _linkRefused = true;
        }
        if (!Stat(srcDir, name, rel, out var st)) return;
        // Keep hard-link groups among copies: a second name of an inode already copied becomes a link to the copy.
        if (st.stx_nlink > 1 && _copies.TryGetValue(Key(st), out var first))
        {
            fixed (byte* f = first)
            fixed (byte* n = name)
                if (T.linkat(_dstRoot, f, dstDir, n, 0) == 0) { _result.Linked++; return; }
        }
        bool copied = (st.stx_mode & 0xF000) switch
        {
            0x8000 => CopyRegular(srcDir, dstDir, name, rel, st),
            0xA000 => CopySymlink(srcDir, dstDir, name, rel, st),
            _ => CopySpecial(srcDir, dstDir, name, rel, st),
        };
        if (!copied) return;
        if (st.stx_nlink > 1) _copies[Key(st)] = rel;
        // Not an error (the entry is frozen), but the manifest says once why this freeze copied.
        _result.FallbackReason ??= $"link {Show(rel)}: {Marshal(errno)}";
    }

    private bool CopyRegular(int srcDir, int dstDir, byte[] name, byte[] rel, statx st)
    {
        int src = -1, dst = -1;
        try
        {
            fixed (byte* n = name)
            {
                src = T.openat(srcDir, n, 0x20000 | 0x80000 /* O_RDONLY|O_NOFOLLOW|O_CLOEXEC */, 0);
                if (src < 0) throw new ErrnoException(T.errno, $"open {Show(rel)}");
                dst = T.openat(dstDir, n, 1 | 0x40 | 0x80 | 0x80000 /* O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC */, 0x180);
                if (dst < 0) throw new ErrnoException(T.errno, $"create {Show(rel)} in the spool");
            }
            if (!_reflinkRefused && T.ioctl(dst, FsCalls.FICLONE, src) == 0)
            {
                _result.Reflinked++;
            }
            else
            {
                if (!_reflinkRefused && T.errno is FsErrno.EOPNOTSUPP or FsErrno.EXDEV or FsErrno.EINVAL or FsErrno.ENOTTY) _reflinkRefused = true;
                CopyData(src, dst, (long)st.stx_size, rel);
                _result.Copied++;
            }
            ApplyFdMetadata(src, dst, st, rel);
            return true;
        }
        catch (ErrnoException e)
        {
            _result.Error(e.Message);
            return false;
        }
        finally
        {
            if (src >= 0) T.close(src);
            if (dst >= 0) T.close(dst);
        }
    }

    /// <summary>Copies the data ranges only (SEEK_DATA/SEEK_HOLE), so a sparse file stays sparse.</summary>
    private void CopyData(int src, int dst, long size, byte[] rel)
    {
        long offset = 0;
        while (offset < size)
        {
            long data = T.lseek(src, offset, FsCalls.SEEK_DATA);
            if (data < 0)
            {
                if (T.errno == FsErrno.ENXIO) break; // only a hole is left
                data = offset; // no hole support: copy everything
            }
            long hole = T.lseek(src, data, FsCalls.SEEK_HOLE);
            if (hole < 0 || hole > size) hole = size;
            CopyRange(src, dst, data, hole - data, rel);
            offset = hole;
        }
        if (T.ftruncate(dst, size) != 0) throw new ErrnoException(T.errno, $"truncate {Show(rel)}");
    }

    private void CopyRange(int src, int dst, long offset, long length, byte[] rel)
    {
        long inOff = offset, outOff = offset, end = offset + length;
        bool kernelCopy = !_kernelCopyRefused;
        while (inOff < end)
        {
            if (PastDeadline()) return;
            int chunk = (int)Math.Min(CopyChunk, end - inOff);
            if (kernelCopy)
            {
                nint n = FsCalls.copy_file_range(src, &inOff, dst, &outOff, (nuint)chunk, 0);
                if (n > 0) { _result.BytesCopied += n; continue; }
                if (n == 0) break; // the file shrank: nothing writes now, but never loop forever
                int e = FsCalls.Errno;
                if (e == FsErrno.EINTR) continue;
                // Across file systems (or types) the kernel may refuse: copy through user space.
                if (e is FsErrno.EXDEV or FsErrno.EINVAL or FsErrno.ENOSYS or FsErrno.EOPNOTSUPP) { kernelCopy = false; _kernelCopyRefused = true; continue; }
                throw new ErrnoException(e, $"copy {Show(rel)}");
            }
            // One buffer for the whole freeze: a fresh 1 MiB array per file costs more than copying a small file.
            var buffer = _copyBuffer ??= new byte[1 << 20];
            fixed (byte* b = buffer)
            {
                nint r = FsCalls.pread(src, b, (nuint)Math.Min(buffer.Length, chunk), inOff);
                if (r < 0) { if (FsCalls.Errno == FsErrno.EINTR) continue; throw new ErrnoException(FsCalls.Errno, $"read {Show(rel)}"); }
                if (r == 0) break;
                for (nint done = 0; done < r;)
                {
                    nint w = FsCalls.pwrite(dst, b + done, (nuint)(r - done), outOff + done);
                    if (w < 0) { if (FsCalls.Errno == FsErrno.EINTR) continue; throw new ErrnoException(FsCalls.Errno, $"write {Show(rel)} to the spool"); }
                    done += w;
                }
                inOff += r; outOff += r; _result.BytesCopied += r;
            }
        }
    }

    private bool CopySymlink(int srcDir, int dstDir, byte[] name, byte[] rel, statx st)
    {
        var target = new byte[Math.Max(256, (int)st.stx_size + 1)];
        fixed (byte* n = name)
        fixed (byte* t = target)
        {
            long len = T.readlinkat(srcDir, n, t, target.Length - 1);
            if (len < 0) { _result.Error($"readlink {Show(rel)}: {Marshal(T.errno)}"); return false; }
            t[len] = 0;
            if (T.symlinkat(t, dstDir, n) != 0) { _result.Error($"symlink {Show(rel)}: {Marshal(T.errno)}"); return false; }
        }
        ApplyPathMetadata(srcDir, dstDir, name, rel, st, chmod: false);
        _result.Copied++;
        return true;
    }

    /// <summary>Whiteouts (char 0:0), other devices, fifos and sockets: a new node of the same type and numbers.</summary>
    private bool CopySpecial(int srcDir, int dstDir, byte[] name, byte[] rel, statx st)
    {
        ulong dev = MakeDev(st.stx_rdev_major, st.stx_rdev_minor);
        fixed (byte* n = name)
            if (T.mknodat(dstDir, n, (ushort)st.stx_mode, dev) != 0)
            {
                _result.Error($"mknod {Show(rel)}: {Marshal(T.errno)}");
                return false;
            }
        ApplyPathMetadata(srcDir, dstDir, name, rel, st, chmod: true);
        _result.Copied++;
        return true;
    }

    // ---- metadata ---------------------------------------------------------------------------------------------

    private void ApplyDirectoryMetadata(int src, int dst, byte[] rel)
    {
        if (!StatFd(src, rel, out var st)) return;
        ApplyFdMetadata(src, dst, st, rel);
    }

    /// <summary>Owner, then mode (chown clears set-id bits), then xattrs (chown clears security.capability), then times.</summary>
    private void ApplyFdMetadata(int src, int dst, statx st, byte[] rel)
    {
        if (T.fchown(dst, st.stx_uid, st.stx_gid) != 0) _result.Error($"chown {Show(rel)}: {Marshal(T.errno)}");
        if (T.fchmod(dst, (ushort)(st.stx_mode & 0xFFF)) != 0) _result.Error($"chmod {Show(rel)}: {Marshal(T.errno)}");
        CopyXattrsFd(src, dst, rel);
        var times = stackalloc timespec[2];
        times[0] = Time(st.stx_atime);
        times[1] = Time(st.stx_mtime);
        if (T.futimens(dst, times) != 0) _result.Error($"utimes {Show(rel)}: {Marshal(T.errno)}");
    }

    private void ApplyPathMetadata(int srcDir, int dstDir, byte[] name, byte[] rel, statx st, bool chmod)
    {
        fixed (byte* n = name)
        {
            if (T.fchownat(dstDir, n, st.stx_uid, st.stx_gid, T.AT_SYMLINK_NOFOLLOW) != 0)
                _result.Error($"chown {Show(rel)}: {Marshal(T.errno)}");
            // mknod's mode went through the umask; symlinks have no mode of their own.
            if (chmod && T.fchmodat(dstDir, n, (ushort)(st.stx_mode & 0xFFF), 0) != 0)
                _result.Error($"chmod {Show(rel)}: {Marshal(T.errno)}");
        }
        // The l*xattr calls take a path: reach the entry through our descriptor of its directory.
        var srcPath = ProcPath(srcDir, name);
        var dstPath = ProcPath(dstDir, name);
        CopyXattrsPath(srcPath, dstPath, rel);
        var times = stackalloc timespec[2];
        times[0] = Time(st.stx_atime);
        times[1] = Time(st.stx_mtime);
        fixed (byte* n = name)
            if (T.utimensat(dstDir, n, times, T.AT_SYMLINK_NOFOLLOW) != 0)
                _result.Error($"utimes {Show(rel)}: {Marshal(T.errno)}");
    }

    private void CopyXattrsFd(int src, int dst, byte[] rel) => CopyXattrs(rel,
        (b, size) => FsCalls.flistxattr(src, b, size),
        (nm, v, size) => FsCalls.fgetxattr(src, nm, v, size),
        (nm, v, size) => FsCalls.fsetxattr(dst, nm, v, size, 0));

    private void CopyXattrsPath(byte[] srcPath, byte[] dstPath, byte[] rel)
    {
        fixed (byte* sp = srcPath)
        fixed (byte* dp = dstPath)
        {
            byte* s = sp, d = dp;
            CopyXattrs(rel,
                (b, size) => FsCalls.llistxattr(s, b, size),
                (nm, v, size) => FsCalls.lgetxattr(s, nm, v, size),
                (nm, v, size) => FsCalls.lsetxattr(d, nm, v, size, 0));
        }
    }

    private void CopyXattrs(byte[] rel, ListCall list, GetCall get, SetCall set)
    {
        foreach (var xname in ListXattrs(rel, list))
        {
            var value = GetXattr(rel, xname, get);
            if (value == null) continue;
            fixed (byte* nm = xname)
            fixed (byte* v = value)
                if (set(nm, v, (nuint)value.Length) != 0)
                    _result.Error($"setxattr {Show(rel)} {Encoding.UTF8.GetString(xname, 0, xname.Length - 1)}: {Marshal(FsCalls.Errno)}");
        }
    }

    private delegate nint ListCall(byte* buffer, nuint size);
    private delegate nint GetCall(byte* name, byte* value, nuint size);
    private delegate int SetCall(byte* name, byte* value, nuint size);

    /// <summary>xattr names, each NUL-terminated (ready to pass back to the kernel).</summary>
    private List<byte[]> ListXattrs(byte[] rel, ListCall list)
    {
        var names = new List<byte[]>();
        nint size = list(null, 0);
        if (size <= 0)
        {
            if (size < 0 && FsCalls.Errno is not (FsErrno.EOPNOTSUPP or FsErrno.ENODATA))
                _result.Error($"listxattr {Show(rel)}: {Marshal(FsCalls.Errno)}");
            return names;
        }
        var buffer = new byte[size + 256]; // grows between the two calls are possible in theory; nothing writes now
        fixed (byte* b = buffer)
        {
            size = list(b, (nuint)buffer.Length);
            if (size < 0) { _result.Error($"listxattr {Show(rel)}: {Marshal(FsCalls.Errno)}"); return names; }
        }
        int start = 0;
        for (int i = 0; i < size; i++)
        {
            if (buffer[i] != 0) continue;
            if (i > start) names.Add(buffer.AsSpan(start, i - start + 1).ToArray());
            start = i + 1;
        }
        return names;
    }

    private byte[]? GetXattr(byte[] rel, byte[] name, GetCall get)
    {
        fixed (byte* nm = name)
        {
            nint size = get(nm, null, 0);
            if (size < 0) { _result.Error($"getxattr {Show(rel)}: {Marshal(FsCalls.Errno)}"); return null; }
            var value = new byte[size];
            if (size == 0) return value;
            fixed (byte* v = value)
            {
                size = get(nm, v, (nuint)value.Length);
                if (size < 0) { _result.Error($"getxattr {Show(rel)}: {Marshal(FsCalls.Errno)}"); return null; }
            }
            return size == value.Length ? value : value.AsSpan(0, (int)size).ToArray();
        }
    }

    // ---- directory listing and stat ---------------------------------------------------------------------------

    /// <summary>Every entry but . and .., as raw names with their d_type.</summary>
    private List<(byte[] Name, byte Type)> ReadDirectory(int fd, byte[] rel)
    {
        var entries = new List<(byte[], byte)>();
        fixed (byte* buf = _direntBuffer)
        {
            while (true)
            {
                nint n = FsCalls.getdents64(fd, buf, (nuint)_direntBuffer.Length);
                if (n == 0) break;
                if (n < 0)
                {
                    if (FsCalls.Errno == FsErrno.EINTR) continue;
                    _result.Error($"read directory {Show(rel)}: {Marshal(FsCalls.Errno)}");
                    break;
                }
                for (nint pos = 0; pos < n;)
                {
                    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                    byte* d = buf + pos;
                    ushort reclen = *(ushort*)(d + 16);
                    byte type = d[18];
                    byte* name = d + 19;
                    int len = 0;
                    while (name[len] != 0) len++;
                    bool dot = len == 1 && name[0] == '.' || len == 2 && name[0] == '.' && name[1] == '.';
                    if (!dot) entries.Add((new ReadOnlySpan<byte>(name, len + 1).ToArray(), type)); // keeps the NUL
                    pos += reclen;
                }
            }
        }
        return entries;
    }

    private bool Stat(int dir, byte[] name, byte[] rel, out statx st)
    {
        fixed (byte* n = name) return StatAt(dir, n, T.AT_SYMLINK_NOFOLLOW, rel, out st);
    }

    private bool StatFd(int fd, byte[] rel, out statx st)
    {
        byte empty = 0;
        return StatAt(fd, &empty, T.AT_EMPTY_PATH, rel, out st);
    }

    private bool StatAt(int dir, byte* name, int flags, byte[] rel, out statx st)
    {
        statx s;
        if (T.statx(dir, name, flags, T.STATX_BASIC_STATS, &s) != 0)
        {
            st = default;
            _result.Error($"stat {Show(rel)}: {Marshal(T.errno)}");
            return false;
        }
        st = s;
        return true;
    }

    private static int OpenDirectory(int parent, byte[] name, string what)
    {
        fixed (byte* n = name)
        {
            int fd = T.openat(parent, n, DirectoryOpenFlags, 0);
            if (fd < 0) throw new ErrnoException(T.errno, $"open directory {what}");
            return fd;
        }
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private static byte DirentType(ushort mode) => (mode & 0xF000) switch
    {
        0x4000 => FsCalls.DT_DIR, 0x8000 => FsCalls.DT_REG, 0xA000 => FsCalls.DT_LNK, 0x2000 => FsCalls.DT_CHR,
        0x6000 => FsCalls.DT_BLK, 0x1000 => FsCalls.DT_FIFO, 0xC000 => FsCalls.DT_SOCK, _ => FsCalls.DT_UNKNOWN,
    };

    private static (ulong, ulong) Key(statx st) => (MakeDev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino);

    /// <summary>glibc's makedev.</summary>
    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    private static timespec Time(statx_timestamp t) => new() { tv_sec = t.tv_sec, tv_nsec = (long_t)(long)t.tv_nsec };

    /// <summary>NUL-terminated UTF-8 (paths that came from mount options and configuration, which are strings).</summary>
    internal static byte[] Bytes(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    /// <summary>parent/name as NUL-terminated bytes (names keep their NUL; the root is empty).</summary>
    private static byte[] Join(byte[] parent, byte[] name)
    {
        if (parent.Length == 0) return name;
        var joined = new byte[parent.Length + name.Length];
        parent.AsSpan(0, parent.Length - 1).CopyTo(joined);
        joined[parent.Length - 1] = (byte)'/';
        name.CopyTo(joined.AsSpan(parent.Length));
        return joined;
    }

    private static byte[] ProcPath(int dirFd, byte[] name)
    {
        var prefix = Encoding.ASCII.GetBytes($"/proc/self/fd/{dirFd}/");
        var path = new byte[prefix.Length + name.Length];
        prefix.CopyTo(path, 0);
        name.CopyTo(path, prefix.Length);
        return path;
    }

    /// <summary>A path for messages: printable ASCII as is, any other byte as \xNN (names are bytes, not text).</summary>
    internal static string Show(byte[] rel)
    {
        int len = rel.Length > 0 && rel[^1] == 0 ? rel.Length - 1 : rel.Length;
        var sb = new StringBuilder(len + 1).Append('/');
        for (int i = 0; i < len; i++)
        {
            byte b = rel[i];
            if (b >= 0x20 && b < 0x7f && b != '\\') sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("x2"));
        }
        return sb.ToString();
    }

    private static string Marshal(int errno) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
}

/// <summary>errno values the freeze tells apart (Linux, all architectures .NET runs on).</summary>
internal static class FsErrno
{
    public const int EINTR = 4, ENXIO = 6, EXDEV = 18, EINVAL = 22, ENOTTY = 25, ENOSYS = 38, ENODATA = 61, EOPNOTSUPP = 95;
}
