using System.Runtime.InteropServices;
using System.Text;
using DiffKeeper.Shim.Native;
using static DiffKeeper.Shim.Tests.Recording.ByteFs;

namespace DiffKeeper.Shim.Tests.Recording;

/// <summary>
/// A live kernel overlay mount (lower, upper, work, merged under a temp dir) on which the test performs what a
/// container does, through the merged view: create, copy-up edit of a lower file, delete of a lower file (a
/// whiteout), rm -rf of a lower dir then re-create it (an opaque dir), symlink, hard link, fifo, socket node, xattrs
/// (user.* and trusted.*), owners and set-id modes, names that are not UTF-8 or hold a newline, a directory with
/// an old mtime, a sparse file. Unmounted (then removed) on dispose.
/// </summary>
internal sealed unsafe class OverlayLab : IDisposable
{
    private readonly TempDir _dir = new("dkfz-");
    private readonly List<string> _mounts = new();

    public static readonly byte[] OddFile = [(byte)'f', 0xff, 0xfe, (byte)'\n', (byte)'g'];
    public static readonly byte[] OddDir = [(byte)'d', (byte)'\n', (byte)'i', 0x80, (byte)'r'];
    public const long SparseSize = 16 << 20;

    public OverlayLab()
    {
        Directory.CreateDirectory(Lower);
        Directory.CreateDirectory(Upper);
        Directory.CreateDirectory(Work);
        Directory.CreateDirectory(Merged);
        Directory.CreateDirectory(Path.Combine(Lower, "gone", "sub"));
        Directory.CreateDirectory(Path.Combine(Lower, "keep"));
        File.WriteAllText(Path.Combine(Lower, "a.txt"), "lower a\n");
        File.WriteAllText(Path.Combine(Lower, "todelete.txt"), "doomed\n");
        File.WriteAllText(Path.Combine(Lower, "gone", "x"), "x\n");
        File.WriteAllText(Path.Combine(Lower, "gone", "sub", "z"), "z\n");
        File.WriteAllText(Path.Combine(Lower, "keep", "k.txt"), "k\n");
        Mount("overlay", Merged, "overlay", $"lowerdir={Lower},upperdir={Upper},workdir={Work}");
    }

    public string Root => _dir.Path;
    public string Lower => _dir.Sub("lower");
    public string Upper => _dir.Sub("upper");
    public string Work => _dir.Sub("work");
    public string Merged => _dir.Sub("merged");

    private byte[] M(string rel) => P(Path.Combine(Merged, rel));

    /// <summary>The container's writes, all through the merged view.</summary>
    public void DoContainerWork()
    {
        WriteFile(M("new.txt"), Encoding.UTF8.GetBytes("created by the container\n"));
        Chown(M("new.txt"), 1234, 5678);
        SetXattr(M("new.txt"), "user.note", "hi"u8.ToArray());
        SetXattr(M("new.txt"), "trusted.dk.test", [0, 1, 2, 0xff]);
        Link(M("new.txt"), M("new-hard.txt"));
        AppendFile(M("a.txt"), "edited in the container\n"u8.ToArray());              // copy-up
        File.Delete(Path.Combine(Merged, "todelete.txt"));                                  // whiteout
        Directory.Delete(Path.Combine(Merged, "gone"), recursive: true);                    // rm -rf a lower dir …
        Directory.CreateDirectory(Path.Combine(Merged, "gone"));                            // … and re-create it: opaque
        WriteFile(M("gone/fresh.txt"), "fresh\n"u8.ToArray());
        AppendFile(M("keep/k.txt"), "k2\n"u8.ToArray());                                     // copy-up inside a kept dir
        Symlink("a.txt", M("link-to-a"));
        Symlink("/nonexistent/target", M("dangling"));
        Mkfifo(M("fifo"));
        fixed (byte* s = M("sock")) if (Tmds.Linux.LibC.mknod(s, (ushort)(0xC000 | 0x1ed), 0UL) != 0) throw new IOException("mknod sock");
        WriteFile(M("setuid.bin"), "#!/bin/sh\n"u8.ToArray(), 0x1ed);
        Chown(M("setuid.bin"), 0, 42);
        Chmod(M("setuid.bin"), 0x9ed /* 04755 */);
        WriteFile(Cat(P(Merged), OddFile), "odd name\n"u8.ToArray());
        Mkdir(Cat(P(Merged), OddDir), 0x1c0);
        WriteFile(Cat(Cat(P(Merged), OddDir), "inner"u8.ToArray()), "inside an odd dir\n"u8.ToArray());
        Mkdir(M("olddir"));
        WriteFile(M("olddir/child"), "c\n"u8.ToArray());
        SetXattr(M("olddir"), "user.dir", "d"u8.ToArray());
        SetMtime(M("olddir"), 1_000_000_000, 123_456_789);                                   // after its child is in
        WriteSparse(M("sparse.bin"), SparseSize);
        Chown(M("link-to-a"), 7, 8);                                                          // a symlink's own owner
    }

    /// <summary>A tmpfs under the lab (another file system: link(2) across it is EXDEV).</summary>
    public string MountTmpfs(string name)
    {
        var path = _dir.Sub(name);
        Directory.CreateDirectory(path);
        Mount("tmpfs", path, "tmpfs", "size=256m");
        return path;
    }

    private void Mount(string source, string target, string type, string data)
    {
        if (LibC.mount(source, target, type, 0, data) != 0)
            throw new IOException($"mount {type} on {target}: {Marshal.GetPInvokeErrorMessage(LibC.LastErrno)}");
        _mounts.Add(target);
    }

    public void Dispose()
    {
        for (int i = _mounts.Count - 1; i >= 0; i--)
            if (LibC.umount2(_mounts[i], 0) != 0) LibC.umount2(_mounts[i], LibC.MNT_DETACH);
        // rm, not Directory.Delete: .NET decodes names as UTF-8 and cannot remove a name that is not.
        using var rm = System.Diagnostics.Process.Start("rm", ["-rf", "--one-file-system", Root]);
        rm.WaitForExit(30_000);
    }
}
