using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Store.Ingest;

/// <summary>Builds versions from lstat results and xattrs; knows overlay's opaque and internal xattrs.</summary>
internal static unsafe class EntryMetadata
{
    private static readonly byte[] TrustedOverlay = "trusted.overlay."u8.ToArray();
    private static readonly byte[] UserOverlay = "user.overlay."u8.ToArray();
    private static readonly byte[] OpaqueSuffix = "opaque"u8.ToArray();

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

    /// <summary>Keeps user-visible xattrs; overlay's own (trusted.overlay.*, user.overlay.*) are plumbing, except opaque.</summary>
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
                continue;
            }
            v.Xattrs.Add(x);
        }
    }

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
