using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Store.Ingest;

/// <summary>Builds versions from lstat results and xattrs; knows overlay's opaque and internal xattrs.</summary>
internal static unsafe class EntryMetadata
{
    private static readonly byte[] TrustedOverlay = "trusted.overlay."u8.ToArray();
    private static readonly byte[] UserOverlay = "user.overlay."u8.ToArray();
    private static readonly byte[] OpaqueSuffix = "opaque"u8.ToArray();
    private static readonly byte[] RedirectSuffix = "redirect"u8.ToArray();
    private static readonly byte[] MetacopySuffix = "metacopy"u8.ToArray();

    public static EntryType TypeOf(in StatInfo st) => st.FileType switch
    {
        Libc.S_IFREG => EntryType.File,
        Libc.S_IFDIR => EntryType.Directory,
        Libc.S_IFLNK => EntryType.Symlink,
        Libc.S_IFIFO => EntryType.Fifo,
        Libc.S_IFCHR => st.IsWhiteout ? EntryType.Whiteout : EntryType.CharDevice,
        Libc.S_IFBLK => EntryType.BlockDevice,
        _ => EntryType.Socket,
    };

    public static FileVersion FromStat(byte[] path, long time, in StatInfo st)
    {
        var v = new FileVersion
        {
            Path = path, Time = time, Type = TypeOf(st), Mode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid,
            MtimeNs = st.MtimeNs, CtimeNs = st.CtimeNs, Inode = st.Inode,
        };
        if (v.Type == EntryType.Whiteout) { v.Mode = 0; v.Uid = v.Gid = 0; v.MtimeNs = 0; return v; }
        if (v.Type is EntryType.CharDevice or EntryType.BlockDevice) { v.RdevMajor = st.RdevMajor; v.RdevMinor = st.RdevMinor; }
        if (v.Type is EntryType.File or EntryType.Symlink) v.Size = (long)st.Size;
        return v;
    }

    /// <summary>
    /// Keeps user-visible xattrs. Overlay's own (trusted.overlay.*, user.overlay.*) are plumbing (origin, impure,
    /// nlink, …), except: opaque becomes <see cref="FileVersion.Opaque"/>; redirect and metacopy are kept as
    /// xattrs, because they are what the upper layer holds instead of content — a directory renamed from a lower
    /// layer (redirect_dir) is an upper directory pointing at the old lower path, a metadata-only copy-up (metacopy)
    /// a file without data. Exported over the same lower layers they mean the same again.
    /// </summary>
    public static void ApplyXattrs(FileVersion v, List<KeyValuePair<byte[], byte[]>> xattrs)
    {
        foreach (var x in xattrs)
        {
            var name = x.Key.AsSpan();
            bool trusted = name.StartsWith(TrustedOverlay), user = name.StartsWith(UserOverlay);
            if (trusted || user)
            {
                var rest = name[(trusted ? TrustedOverlay.Length : UserOverlay.Length)..];
                if (rest.SequenceEqual(OpaqueSuffix) && x.Value.AsSpan().SequenceEqual("y"u8)) v.Opaque = v.Type == EntryType.Directory;
                if (rest.SequenceEqual(RedirectSuffix) || rest.SequenceEqual(MetacopySuffix)) v.Xattrs.Add(x);
                continue;
            }
            v.Xattrs.Add(x);
        }
    }

    /// <summary>A metadata-only copy-up: the upper file has no data of its own (it is in a lower layer).</summary>
    public static bool IsMetacopy(FileVersion v) => v.Xattrs.Exists(x => IsOverlay(x.Key, MetacopySuffix));

    /// <summary>Content read from the merged view: the version is then a whole file, no pointer into a lower layer.</summary>
    public static void DropLowerPointers(FileVersion v) =>
        v.Xattrs.RemoveAll(x => IsOverlay(x.Key, MetacopySuffix) || IsOverlay(x.Key, RedirectSuffix));

    private static bool IsOverlay(ReadOnlySpan<byte> name, ReadOnlySpan<byte> suffix) =>
        (name.StartsWith(TrustedOverlay) && name[TrustedOverlay.Length..].SequenceEqual(suffix)) ||
        (name.StartsWith(UserOverlay) && name[UserOverlay.Length..].SequenceEqual(suffix));

    public static byte[] ReadLink(int dirfd, byte[] nameZ, long sizeHint)
    {
        var buf = new byte[Math.Max(256, sizeHint + 1)];
        while (true)
        {
            nint n;
            fixed (byte* b = buf)
            fixed (byte* p = nameZ)
                n = Libc.readlinkat(dirfd, p, b, buf.Length);
            if (n < 0) throw new IOException("readlink: " + Libc.ErrorText(Libc.Errno));
            if (n < buf.Length) return buf.AsSpan(0, (int)n).ToArray();
            buf = new byte[buf.Length * 2];
        }
    }
}
