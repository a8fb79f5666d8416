using System.Text;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using Libc = DiffKeeper.Store.Native.Libc;

namespace DiffKeeper.Store.Tests;

/// <summary>Builds upper-layer trees with raw-byte names, xattrs and special files.</summary>
public static unsafe class Tree
{
    public static byte[] Z(string dir, ReadOnlySpan<byte> rel)
    {
        var d = Encoding.UTF8.GetBytes(dir);
        return [.. d, (byte)'/', .. rel, 0];
    }

    public static void WriteFile(string dir, ReadOnlySpan<byte> rel, ReadOnlySpan<byte> content, uint mode = 0x1a4)
    {
        var z = Z(dir, rel);
        int fd;
        fixed (byte* p = z) fd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_TRUNC | Libc.O_CLOEXEC, mode);
        if (fd < 0) throw new IOException("create failed: " + Libc.ErrorText(Libc.Errno));
        try
        {
            fixed (byte* c = content)
            {
                long off = 0;
                while (off < content.Length)
                {
                    var n = Libc.pwrite(fd, c + off, content.Length - (int)off, off);
                    if (n <= 0) throw new IOException("write failed");
                    off += n;
                }
            }
            Libc.fchmod(fd, mode);
        }
        finally { Libc.close(fd); }
    }

    public static void WriteFile(string dir, string rel, string content) => WriteFile(dir, Encoding.UTF8.GetBytes(rel), Encoding.UTF8.GetBytes(content));

    public static void Mkdir(string dir, string rel) => Directory.CreateDirectory(System.IO.Path.Combine(dir, rel));

    public static void SetXattr(string dir, string rel, string name, byte[] value)
    {
        var path = Z(dir, Encoding.UTF8.GetBytes(rel));
        var n = Encoding.UTF8.GetBytes(name + "\0");
        int r;
        fixed (byte* p = path)
        fixed (byte* np = n)
        fixed (byte* v = value)
            r = Libc.lsetxattr(p, np, v, value.Length, 0);
        if (r != 0) throw new IOException($"setxattr {name}: {Libc.ErrorText(Libc.Errno)}");
    }

    public static void Mknod(string dir, string rel, uint type, uint major, uint minor, uint mode = 0x1a4)
    {
        var z = Encoding.UTF8.GetBytes(System.IO.Path.Combine(dir, rel) + "\0");
        int r;
        fixed (byte* p = z) r = Libc.mknodat(Libc.AT_FDCWD, p, type | mode, Libc.MakeDev(major, minor));
        if (r != 0) throw new IOException($"mknod {rel}: {Libc.ErrorText(Libc.Errno)}");
    }

    public static void HardLink(string dir, string existing, string link)
    {
        var a = Z(dir, Encoding.UTF8.GetBytes(existing));
        var b = Z(dir, Encoding.UTF8.GetBytes(link));
        int r;
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            r = Libc.linkat(Libc.AT_FDCWD, pa, Libc.AT_FDCWD, pb, 0);
        if (r != 0) throw new IOException($"link {link}: {Libc.ErrorText(Libc.Errno)}");
    }

    public static void Whiteout(string dir, string rel) => Mknod(dir, rel, Libc.S_IFCHR, 0, 0, 0);

    public static byte[] Random(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }
}

/// <summary>A store in a temp dir with a recording, ingester and helpers to read state back.</summary>
public sealed class StoreFixture : IDisposable
{
    public TempDir Temp { get; } = new("dk-store-test-");
    public RecordingStore Store { get; private set; }
    public long T0 { get; } = 1_800_000_000L * Moments.NsPerSecond;

    public StoreFixture() => Store = RecordingStore.Open(System.IO.Path.Combine(Temp.Path, "store"));

    public string StoreDir => System.IO.Path.Combine(Temp.Path, "store");

    public RecordingInfo NewRecording(string name = "rec") => Store.CreateRecording(new RecordingInfo { Name = name, Start = T0 });

    public Ingest.IngestSummary Snapshot(RecordingInfo rec, string dir, double atSeconds) =>
        new Ingest.Ingester(Store).IngestTree(rec, dir, At(atSeconds));

    public long At(double seconds) => T0 + (long)(seconds * Moments.NsPerSecond);

    public byte[] Read(FileVersion v) => Read(Store, v);

    /// <summary>A version's whole content, read (and hash-verified) from <paramref name="store"/>.</summary>
    public static byte[] Read(RecordingStore store, FileVersion v)
    {
        using var r = new Query.ContentReader(store, v);
        var ms = new MemoryStream();
        r.CopyTo(ms);
        return ms.ToArray();
    }

    public void Reopen()
    {
        Store.Dispose();
        Store = RecordingStore.Open(StoreDir);
    }

    public void Dispose()
    {
        Store.Dispose();
        Temp.Dispose();
    }
}
