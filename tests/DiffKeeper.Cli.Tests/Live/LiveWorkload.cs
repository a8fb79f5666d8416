using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Live;

/// <summary>
/// A container's life in miniature: an image-like lower layer, then a seeded random sequence of file system
/// operations done with real syscalls through an overlay's merged view — the kernel decides what lands in the
/// upper directory (copy-ups, whiteouts, opaque directories, redirects), not the test.
/// </summary>
public sealed class LiveWorkload(string merged, int seed)
{
    private readonly Random _rng = new(seed);
    private int _names;

    /// <summary>What each operation did, for the failure message.</summary>
    public List<string> Log { get; } = [];

    // ---- the image ---------------------------------------------------------------------------------------------

    /// <summary>Writes an image-like tree: nested dirs, binaries, configs with xattrs, symlinks, hard links, odd names.</summary>
    public static void BuildImage(string lower, int seed)
    {
        var rng = new Random(seed * 31 + 7);
        string P(string rel) => lower + "/" + rel;
        foreach (var d in new[] { "etc", "etc/app.d", "usr", "usr/bin", "usr/lib", "var", "var/log", "var/cache", "var/cache/a",
                     "var/cache/a/b", "opt", "opt/app", "opt/app/data", "home", "home/user", "srv" })
            Posix.MkDir(P(d));
        Posix.WriteFile(P("etc/hostname"), "image\n"u8);
        Posix.WriteFile(P("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"u8);
        Posix.WriteFile(P("etc/app.d/app.conf"), "level=info\nport=8080\n"u8, 0x1A0);
        Posix.SetXattr(P("etc/app.d/app.conf"), "user.origin", "image"u8);
        Posix.SetXattr(P("etc/app.d"), "user.dir-attr", [1, 2, 3]);
        Posix.WriteFile(P("etc/odd\nname"), "newline in the name"u8);
        Posix.WriteFile(P("etc/" + RawPath.FromBytes([0x6E, 0xFF, 0xFE, 0x2E, 0x63])), "not UTF-8"u8);
        Posix.WriteFile(P("usr/bin/tool"), Bytes(rng, 180_000), 0x1ED);
        Posix.WriteFile(P("usr/bin/su"), Bytes(rng, 3_000), 0x9ED); // 04755
        Posix.WriteFile(P("usr/lib/libx.so.1.2"), Bytes(rng, 90_000), 0x1ED);
        Posix.HardLink(P("usr/lib/libx.so.1.2"), P("usr/lib/libx-hardlink"));
        Posix.Symlink("libx.so.1.2", P("usr/lib/libx.so.1"));
        Posix.Symlink("/usr/bin", P("bin"));
        Posix.Symlink("../nowhere", P("var/dangling"));
        Posix.WriteFile(P("var/cache/a/b/deep"), Bytes(rng, 5_000));
        Posix.WriteFile(P("var/log/old.log"), Bytes(rng, 20_000));
        for (int i = 0; i < 12; i++) Posix.WriteFile(P($"opt/app/module{i}.py"), Bytes(rng, rng.Next(10, 3_000)));
        Posix.WriteFile(P("opt/app/data/" + RawPath.FromUtf8("caf\u00e9 data.bin")), Bytes(rng, 70_000));
        Posix.SetXattr(P("opt/app/data"), "user.kind", "data"u8);
        Posix.WriteFile(P("home/user/notes"), "mine"u8, 0x180);
        Posix.LChown(P("home/user/notes"), 1000, 1000);
        Posix.LChown(P("home/user"), 1000, 1000);
        Posix.MkNod(P("srv/pipe"), Posix.S_IFIFO | 0x1A4);
    }

    // ---- operations --------------------------------------------------------------------------------------------

    public void Step()
    {
        var all = Tree();
        var files = all.Where(e => e.Value.Type == Posix.S_IFREG).Select(e => e.Key).ToList();
        var dirs = all.Where(e => e.Value.Type == Posix.S_IFDIR).Select(e => e.Key).ToList();
        var nonDirs = all.Where(e => e.Value.Type != Posix.S_IFDIR).Select(e => e.Key).ToList();
        var dirsAndRoot = dirs.Prepend("").ToList();
        switch (_rng.Next(21))
        {
            case 0: case 1: Create(Pick(dirsAndRoot)); break;
            case 2: With(files, p => Do("overwrite", p, () => Posix.WriteFile(Full(p), Bytes(_rng, Size())))); break;
            case 3: With(files, p => Do("append", p, () => Posix.WriteAt(Full(p), 0, Bytes(_rng, _rng.Next(1, 30_000)), append: true))); break;
            case 4: With(files, p => Do("truncate", p, () => Posix.Truncate(Full(p), Math.Max(0, all[p].Size + _rng.Next(-20_000, 5_000))))); break;
            case 5: With(files, p => Do("overwrite in place", p, () => Posix.WriteAt(Full(p), all[p].Size == 0 ? 0 : _rng.NextInt64(all[p].Size), Bytes(_rng, _rng.Next(1, 2_000))))); break;
            case 6: With(nonDirs, p => RenameTo(p, _rng.Next(4) == 0 && files.Count > 0 ? Pick(files) : NewPath(Pick(dirsAndRoot)))); break;
            case 7: With(dirs, d => RenameTo(d, NewPath(Pick(dirsAndRoot.Where(x => x != d && !RawPath.IsUnder(x, d)).ToList())))); break;
            case 8: case 9: With(nonDirs, p => Do("rm", p, () => Posix.Unlink(Full(p)))); break;
            case 10: With(dirs, d => Do("rm -rf", d, () => Posix.RemoveTree(Full(d)))); break;
            case 11: Mkdir(Pick(dirsAndRoot)); break;
            case 12: With(dirs.Where(d => Posix.ListDir(Full(d)).Count == 0).ToList(), d => Do("rmdir", d, () => Posix.RmDir(Full(d)))); break;
            case 13: With(all.Where(e => e.Value.Type != Posix.S_IFLNK).Select(e => e.Key).ToList(), p =>
                Do("chmod", p, () => Posix.Chmod(Full(p), Pick<uint>(all[p].Type == Posix.S_IFDIR ? [0x1ED, 0x1C0, 0x3FF, 0x1E8] : [0x1A4, 0x180, 0x1ED, 0x9ED, 0x124])))); break;
            case 14: With(all.Keys.ToList(), p => Do("chown", p, () => Posix.LChown(Full(p), Pick([0u, 1000u, 4242u]), Pick([0u, 1000u, 4242u])))); break;
            case 15: Symlink(Pick(dirsAndRoot), all.Keys.ToList()); break;
            case 16: With(files, p => { var to = NewPath(Pick(dirsAndRoot)); Do("ln", p, () => Posix.HardLink(Full(p), Full(to)), to); }); break;
            case 17: With(files.Concat(dirs).ToList(), SetOrRemoveXattr); break;
            case 18: { var p = NewPath(Pick(dirsAndRoot)); Do("mkfifo", p, () => Posix.MkNod(Full(p), Posix.S_IFIFO | 0x1A0)); break; }
            case 19: With(dirs, d => Do("rm -rf + mkdir", d, () => { Posix.RemoveTree(Full(d)); Posix.MkDir(Full(d)); Posix.WriteFile(Full(d) + "/again", Bytes(_rng, 100)); })); break;
            case 20: With(all.Keys.ToList(), ChangeType); break;
        }
    }

    private void Create(string dir)
    {
        var p = NewPath(dir);
        Do("create", p, () =>
        {
            Posix.WriteFile(Full(p), Bytes(_rng, Size()), Pick([0x1A4u, 0x180u, 0x1EDu]));
            if (_rng.Next(3) == 0) Posix.SetXattr(Full(p), "user.new" + _rng.Next(3), Bytes(_rng, _rng.Next(0, 40)));
        });
    }

    private void Mkdir(string dir)
    {
        var p = NewPath(dir);
        Do("mkdir", p, () =>
        {
            Posix.MkDir(Full(p), Pick([0x1EDu, 0x1C0u]));
            for (int i = _rng.Next(0, 4); i > 0; i--) Posix.WriteFile(Full(p) + "/f" + i, Bytes(_rng, Size()));
        });
    }

    private void Symlink(string dir, List<string> existing)
    {
        var p = NewPath(dir);
        string target = existing.Count > 0 && _rng.Next(2) == 0 ? "/" + Pick(existing) : Pick(["../x", "/etc/hostname", "dangling", RawPath.FromBytes([0xFF, 0x41])]);
        Do("symlink", p, () => Posix.Symlink(target, Full(p)));
    }

    /// <summary>rename(2); a directory the kernel will not rename (a lower one without redirect_dir: EXDEV) is moved the way mv does it.</summary>
    private void RenameTo(string from, string to) => Do("mv", from, () =>
    {
        int e = Posix.Rename(Full(from), Full(to));
        if (e == Posix.EXDEV)
        {
            CopyTree(Full(from), Full(to));
            Posix.RemoveTree(Full(from));
            Log[^1] += " (EXDEV: copied and removed)";
        }
        else if (e != 0) throw new IOException($"rename: errno {e}");
    }, to);

    private static void CopyTree(string from, string to)
    {
        var st = Posix.LStat(from);
        switch (st.Type)
        {
            case Posix.S_IFDIR:
                Posix.MkDir(to, 0x1C0);
                foreach (var name in Posix.ListDir(from)) CopyTree(from + "/" + name, to + "/" + name);
                break;
            case Posix.S_IFREG: Posix.WriteFile(to, Posix.ReadFile(from), 0x180); break;
            case Posix.S_IFLNK: Posix.Symlink(Posix.ReadLink(from), to); break;
            default: Posix.MkNod(to, st.Type | 0x180); break;
        }
        Posix.LChown(to, st.Uid, st.Gid);
        if (st.Type == Posix.S_IFLNK) return;
        foreach (var (k, v) in Posix.ListXattrs(to)) if (k.StartsWith("user.", StringComparison.Ordinal)) Posix.RemoveXattr(to, k);
        foreach (var (k, v) in Posix.ListXattrs(from)) if (k.StartsWith("user.", StringComparison.Ordinal)) Posix.SetXattr(to, k, v);
        Posix.Chmod(to, st.Permissions);
    }

    private void SetOrRemoveXattr(string p)
    {
        var have = Posix.ListXattrs(Full(p)).Keys.Where(k => k.StartsWith("user.", StringComparison.Ordinal)).ToList();
        if (have.Count > 0 && _rng.Next(2) == 0) { var k = Pick(have); Do("removexattr " + k, p, () => Posix.RemoveXattr(Full(p), k)); }
        else { var k = "user.k" + _rng.Next(4); Do("setxattr " + k, p, () => Posix.SetXattr(Full(p), k, Bytes(_rng, _rng.Next(0, 50)))); }
    }

    private void ChangeType(string p)
    {
        bool isDir = Posix.LStat(Full(p)).Type == Posix.S_IFDIR;
        Do(isDir ? "dir -> file" : "non-dir -> dir", p, () =>
        {
            Posix.RemoveTree(Full(p));
            if (isDir) Posix.WriteFile(Full(p), Bytes(_rng, Size()));
            else { Posix.MkDir(Full(p)); Posix.WriteFile(Full(p) + "/inside", Bytes(_rng, 300)); }
        });
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    /// <summary>Runs one operation. The kernel's answer is the truth: a refused operation is logged, not a test failure.</summary>
    private void Do(string what, string path, Action action, string? to = null)
    {
        Log.Add($"{what} /{RawPath.Display(path)}" + (to is null ? "" : $" -> /{RawPath.Display(to)}"));
        try { action(); }
        catch (IOException e) { Log[^1] += $" (refused: {e.Message})"; }
    }

    private string Full(string rel) => rel.Length == 0 ? merged : merged + "/" + rel;

    /// <summary>Every entry of the merged view (relative raw path -> lstat).</summary>
    private SortedDictionary<string, Posix.Stat> Tree()
    {
        var result = new SortedDictionary<string, Posix.Stat>(StringComparer.Ordinal);
        void Walk(string rel)
        {
            foreach (var name in Posix.ListDir(Full(rel)))
            {
                var child = rel.Length == 0 ? name : rel + "/" + name;
                var st = Posix.LStat(Full(child));
                result[child] = st;
                if (st.Type == Posix.S_IFDIR) Walk(child);
            }
        }
        Walk("");
        return result;
    }

    private void With(List<string> candidates, Action<string> op)
    {
        if (candidates.Count > 0) op(Pick(candidates));
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];

    private static readonly string[] NameStyles = ["plain", "with space", "new\nline", "tab\there", "caf\u00e9", ".hidden", "star*"];

    private string NewPath(string dir)
    {
        int n = ++_names;
        string name = _rng.Next(6) switch
        {
            0 => RawPath.FromBytes([0x66, 0xFF, 0xFE, (byte)'_']) + n,   // not UTF-8
            1 => new string('L', 120) + n,                               // long name
            _ => RawPath.FromUtf8(NameStyles[_rng.Next(NameStyles.Length)]) + n,
        };
        return dir.Length == 0 ? name : dir + "/" + name;
    }

    private int Size() => _rng.Next(10) switch
    {
        0 => 0,
        < 6 => _rng.Next(1, 500),
        < 9 => _rng.Next(500, 40_000),
        _ => _rng.Next(40_000, 250_000),   // several chunks
    };

    /// <summary>Half random, half repetitive: compressible and incompressible parts, both chunked.</summary>
    private static byte[] Bytes(Random rng, int size)
    {
        var b = new byte[size];
        rng.NextBytes(b);
        for (int i = 0; i < size / 2; i++) b[i] = (byte)('a' + (b[i] & 7));
        return b;
    }
}
