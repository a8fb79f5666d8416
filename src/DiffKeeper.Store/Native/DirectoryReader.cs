using System.Buffers;

namespace DiffKeeper.Store.Native;

/// <summary>One directory entry as getdents64 gives it: the raw name, the inode and the d_type (no stat needed).</summary>
public readonly record struct DirectoryEntry(byte[] Name, ulong Inode, byte Type)
{
    public const byte DT_DIR = 4, DT_REG = 8, DT_LNK = 10, DT_CHR = 2, DT_UNKNOWN = 0;
}

/// <summary>
/// Lists a directory with getdents64; names stay raw bytes (never decoded). The tree ingest wants the names sorted;
/// the recorder's rescans want each entry's inode too (new, gone, or the same inode under another name: a rename).
/// </summary>
public static unsafe class DirectoryReader
{
    /// <summary>Returns the names in <paramref name="dirfd"/>, without "." and "..", sorted bytewise.</summary>
    public static List<byte[]> ReadNames(int dirfd)
    {
        var entries = ReadEntries(dirfd);
        var names = new List<byte[]>(entries.Count);
        foreach (var e in entries) names.Add(e.Name);
        names.Sort(static (a, b) => a.AsSpan().SequenceCompareTo(b));
        return names;
    }

    /// <summary>The entries of <paramref name="dirfd"/> in directory order, without "." and "..". Throws IOException
    /// on a read error.</summary>
    public static List<DirectoryEntry> ReadEntries(int dirfd)
    {
        var list = new List<DirectoryEntry>();
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
                        if (!dots) list.Add(new DirectoryEntry(new ReadOnlySpan<byte>(name, len).ToArray(), ino, type));
                        off += reclen;
                    }
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
        return list;
    }
}
