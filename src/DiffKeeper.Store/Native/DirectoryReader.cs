using System.Buffers;

namespace DiffKeeper.Store.Native;

/// <summary>Lists a directory's entry names as raw bytes with getdents64 (names are never decoded).</summary>
internal static unsafe class DirectoryReader
{
    /// <summary>Returns the names in <paramref name="dirfd"/>, without "." and "..", sorted bytewise.</summary>
    public static List<byte[]> ReadNames(int dirfd)
    {
        var names = new List<byte[]>();
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
                        ushort reclen = *(ushort*)(p + off + 16);
                        byte* name = p + off + 19;
                        int len = 0;
                        while (name[len] != 0) len++;
                        bool dots = (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
                        if (!dots) names.Add(new ReadOnlySpan<byte>(name, len).ToArray());
                        off += reclen;
                    }
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
        names.Sort(static (a, b) => a.AsSpan().SequenceCompareTo(b));
        return names;
    }
}
