using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace DiffKeeper.TestSupport;

/// <summary>
/// A private scratch directory, removed with everything in it on dispose (also when the test failed).
/// <para>By default in <c>$TMPDIR</c> (usually /tmp): short paths, as unix socket paths must stay below 108 bytes.
/// <c>onDisk</c> puts it under /var/tmp, a disk file system, for tests that need what a small tmpfs may lack
/// (xattrs, d_type for overlayfs, dirty pages and writeback).</para>
/// <para>Removal works on raw bytes (tests make names that are not UTF-8, which .NET's file APIs cannot name), makes
/// read-only directories writable first, and never descends into another file system mounted inside: a test that
/// failed before its unmount must not cost that mount its contents.</para>
/// </summary>
public sealed unsafe class TempDir : IDisposable
{
    public TempDir(string prefix = "dk-test-", bool onDisk = false)
    {
        string root = onDisk && Directory.Exists("/var/tmp") ? "/var/tmp" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(root, prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A path inside the directory (nothing is created).</summary>
    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>A path inside the directory (nothing is created); the same as the indexer.</summary>
    public string Sub(string name) => this[name];

    /// <summary>A directory inside, created (with its parents).</summary>
    public string CreateSub(string name)
    {
        var path = this[name];
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose()
    {
        try { RemoveTree(Encoding.UTF8.GetBytes(Path)); }
        catch (IOException) { } // best effort: a leftover is reported by tests/run-tests.sh, a throw here would hide the test's own failure
    }

    // Tmds.LibC (0.5) has no opendir/readdir/closedir: declared here.
    [DllImport("libc", SetLastError = true)] private static extern nint opendir(byte* path);
    [DllImport("libc", SetLastError = true)] private static extern byte* readdir(nint dir);
    [DllImport("libc", SetLastError = true)] private static extern int closedir(nint dir);

    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000;
    private const int ENOENT = 2;
    private const int DirentNameOffset = 19; // struct dirent (glibc, 64-bit): d_ino 8, d_off 8, d_reclen 2, d_type 1

    /// <summary>Removes <paramref name="path"/> (raw bytes, no NUL) and everything below it on the same file system.</summary>
    public static void RemoveTree(byte[] path)
    {
        stat root;
        fixed (byte* p = Z(path))
            if (lstat(p, &root) != 0)
            {
                if (Marshal.GetLastPInvokeError() == ENOENT) return;
                throw Failure("lstat", path);
            }
        Remove(path, root.st_dev, root);
    }

    private static void Remove(byte[] path, ulong device, stat st)
    {
        var z = Z(path);
        fixed (byte* p = z)
        {
            if (((uint)st.st_mode & S_IFMT) != S_IFDIR)
            {
                if (unlink(p) != 0 && Marshal.GetLastPInvokeError() != ENOENT) throw Failure("unlink", path);
                return;
            }
            if (st.st_dev != device) return; // a mount point: leave it (and the directory holding it) alone
            chmod(p, (mode_t)0x1C0u);        // 0700: a test may have left it read-only
        }
        foreach (var name in List(path))
        {
            var child = new byte[path.Length + 1 + name.Length];
            path.CopyTo(child, 0);
            child[path.Length] = (byte)'/';
            name.CopyTo(child, path.Length + 1);
            stat cst;
            fixed (byte* c = Z(child))
                if (lstat(c, &cst) != 0) continue;
            Remove(child, device, cst);
        }
        fixed (byte* p = z)
            if (rmdir(p) != 0 && Marshal.GetLastPInvokeError() != ENOENT) throw Failure("rmdir", path);
    }

    private static List<byte[]> List(byte[] path)
    {
        var names = new List<byte[]>();
        nint dir;
        fixed (byte* p = Z(path)) dir = opendir(p);
        if (dir == 0) throw Failure("opendir", path);
        try
        {
            for (byte* entry = readdir(dir); entry != null; entry = readdir(dir))
            {
                var name = new ReadOnlySpan<byte>(entry + DirentNameOffset, 256);
                name = name[..name.IndexOf((byte)0)];
                if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) continue;
                names.Add(name.ToArray());
            }
        }
        finally { closedir(dir); }
        return names;
    }

    private static byte[] Z(byte[] path)
    {
        var z = new byte[path.Length + 1];
        path.CopyTo(z, 0);
        return z;
    }

    private static IOException Failure(string call, byte[] path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} {Encoding.UTF8.GetString(path)}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }
}
