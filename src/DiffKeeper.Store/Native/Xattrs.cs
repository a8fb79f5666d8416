namespace DiffKeeper.Store.Native;

/// <summary>Reads extended attributes of one entry (by fd, or by path for symlinks and devices).</summary>
internal static unsafe class Xattrs
{
    /// <summary>All xattrs of the entry, names and values as raw bytes, sorted by name.</summary>
    public static List<KeyValuePair<byte[], byte[]>> Read(int fd, byte[]? pathZ)
    {
        var result = new List<KeyValuePair<byte[], byte[]>>();
        byte[] list = new byte[1024];
        nint n;
        while (true)
        {
            fixed (byte* l = list)
            fixed (byte* p = pathZ)
                n = fd >= 0 ? Libc.flistxattr(fd, l, list.Length) : Libc.llistxattr(p, l, list.Length);
            if (n >= 0) break;
            int e = Libc.Errno;
            if (e == Libc.ERANGE) { list = new byte[list.Length * 4]; continue; }
            if (e == Libc.ENOTSUP || e == Libc.ENOENT) return result;
            throw new IOException("listxattr: " + Libc.ErrorText(e));
        }
        int start = 0;
        for (int i = 0; i < n; i++)
        {
            if (list[i] != 0) continue;
            var nameZ = list.AsSpan(start, i - start + 1).ToArray();
            start = i + 1;
            var value = Get(fd, pathZ, nameZ);
            if (value != null) result.Add(new(nameZ.AsSpan(0, nameZ.Length - 1).ToArray(), value));
        }
        result.Sort(static (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
        return result;
    }

    private static byte[]? Get(int fd, byte[]? pathZ, byte[] nameZ)
    {
        byte[] value = new byte[256];
        while (true)
        {
            nint n;
            fixed (byte* v = value)
            fixed (byte* nm = nameZ)
            fixed (byte* p = pathZ)
                n = fd >= 0 ? Libc.fgetxattr(fd, nm, v, value.Length) : Libc.lgetxattr(p, nm, v, value.Length);
            if (n >= 0) return value.AsSpan(0, (int)n).ToArray();
            int e = Libc.Errno;
            if (e == Libc.ERANGE) { value = new byte[value.Length * 8]; continue; }
            if (e == Libc.ENODATA) return null;
            throw new IOException("getxattr: " + Libc.ErrorText(e));
        }
    }
}
