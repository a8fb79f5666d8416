using DiffKeeper.Shim.Recording;
using Xunit;
using static DiffKeeper.Shim.Tests.Recording.ByteFs;

namespace DiffKeeper.Shim.Tests.Recording;

/// <summary>
/// The freeze against a live kernel overlay: what a container did through the merged view lands in the upper dir
/// (whiteouts, opaque dirs, copy-ups, odd names…), and the frozen tree must equal that upper dir entry for entry —
/// type, mode, owner, bytes, symlink targets, xattrs (trusted.overlay.* included), device numbers, directory mtimes,
/// hard-link groups — sharing inodes when hard-linked, and just as equal when link(2) fails (EXDEV to a tmpfs).
/// </summary>
public sealed class UpperFreezerTests
{
    private static OverlayLab NewLab()
    {
        RequireRoot();
        var lab = new OverlayLab();
        lab.DoContainerWork();
        return lab;
    }

    private static void RequireRoot() => Integration.RequireRoot("needs root: overlay and tmpfs mounts");

    [SkippableFact]
    public void TheLabReallyProducesOverlayArtefacts_InTheUpperDir()
    {
        using var lab = NewLab();
        var upper = Snapshot(lab.Upper);
        // Without these the equality tests below would prove nothing about whiteouts and opaque dirs.
        var whiteout = upper["/todelete.txt"];
        Assert.Equal('c', whiteout.Type);
        Assert.Equal(0UL, whiteout.Rdev);
        Assert.Contains("trusted.overlay.opaque=79", upper["/gone"].Xattrs); // "y"
        Assert.False(upper.ContainsKey("/gone/x"));
        Assert.Equal("lower a\nedited in the container\n", File.ReadAllText(Path.Combine(lab.Upper, "a.txt")));
        Assert.Contains("/f\\xff\\xfe\\x0ag", upper.Keys);
        Assert.Contains("/d\\x0ai\\x80r/inner", upper.Keys);
        Assert.Equal('s', upper["/sock"].Type);
        Assert.Equal('p', upper["/fifo"].Type);
        Assert.Equal(upper["/new.txt"].Ino, upper["/new-hard.txt"].Ino);
        Assert.Equal(1_000_000_000, upper["/olddir"].MtimeSec);
        Assert.Contains("trusted.dk.test=000102ff", upper["/new.txt"].Xattrs);
        Assert.Equal(0x9ed, (int)upper["/setuid.bin"].Mode);
    }

    [SkippableFact]
    public void Freeze_SameFileSystem_HardLinksEveryEntry_AndTheTreeEqualsTheUpperDir()
    {
        using var lab = NewLab();
        var spool = Path.Combine(lab.Root, "spool");
        Directory.CreateDirectory(spool);
        var before = Snapshot(lab.Upper);

        var result = UpperFreezer.Freeze(lab.Upper, Path.Combine(spool, "upper"), TimeSpan.FromSeconds(30));

        Assert.True(result.Complete, string.Join("\n", result.Errors));
        Assert.Empty(result.Errors);
        Assert.Equal("hardlink", result.Method);
        Assert.Equal(0, result.Copied + result.Reflinked);
        var frozen = Snapshot(Path.Combine(spool, "upper"));
        AssertSameTree(before, frozen);
        // Linked, not copied: the very same inodes (no byte was copied).
        foreach (var (path, e) in before.Where(p => p.Value.Type != 'd'))
            Assert.True(e.Ino == frozen[path].Ino, $"{path} is not a hard link of the upper dir's entry");
        // And the upper dir itself was not changed by the freeze (ctime/nlink aside).
        AssertSameTree(before, Snapshot(lab.Upper));
    }

    [SkippableFact]
    public void Freeze_AcrossFileSystems_FallsBackToCopies_ThatEqualTheUpperDir_KeepingLinkGroupsAndHoles()
    {
        using var lab = NewLab();
        var tmpfs = lab.MountTmpfs("tmpfs-spool");
        var before = Snapshot(lab.Upper);

        var result = UpperFreezer.Freeze(lab.Upper, Path.Combine(tmpfs, "upper"), TimeSpan.FromSeconds(30));

        Assert.True(result.Complete, string.Join("\n", result.Errors));
        Assert.Empty(result.Errors);
        Assert.Equal("copy", result.Method); // tmpfs has no reflink
        Assert.Equal(0, result.Linked - CountSecondNames(before)); // links only among the copies (link groups)
        Assert.Contains("cross-device", result.FallbackReason ?? "", StringComparison.OrdinalIgnoreCase);
        var frozen = Snapshot(Path.Combine(tmpfs, "upper"));
        AssertSameTree(before, frozen);
        Assert.NotEqual(before["/new.txt"].Ino, frozen["/new.txt"].Ino);
        // Sparse stays sparse: 16 MiB long, one 4 KiB block of data.
        Assert.Equal(OverlayLab.SparseSize, frozen["/sparse.bin"].Size);
        Assert.True(frozen["/sparse.bin"].Blocks * 512 <= 64 * 1024, $"sparse.bin allocates {frozen["/sparse.bin"].Blocks * 512} bytes");
        Assert.True(result.BytesCopied < 1 << 20, $"{result.BytesCopied} bytes copied: holes were copied as data");
    }

    [SkippableFact]
    public void Freeze_PastItsDeadline_StopsAndSaysTheTreeIsPartial()
    {
        using var lab = NewLab();
        var dest = Path.Combine(lab.Root, "late");
        var result = UpperFreezer.Freeze(lab.Upper, dest, TimeSpan.Zero);
        Assert.False(result.Complete);
        Assert.Contains(result.Errors, e => e.Contains("deadline"));
        Assert.True(Directory.Exists(dest));
    }

    /// <summary>Names beyond the first of each hard-link group (of non-directories).</summary>
    private static int CountSecondNames(Dictionary<string, Entry> tree) =>
        tree.Values.Where(e => e.Type != 'd').GroupBy(e => e.Ino).Sum(g => g.Count() - 1);

    internal static void AssertSameTree(Dictionary<string, Entry> expected, Dictionary<string, Entry> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, e) in expected)
            Assert.True(e.Comparable == actual[path].Comparable, $"{path}:\n  upper:  {e.Comparable}\n  frozen: {actual[path].Comparable}");
        // Hard-link groups: the same partition of names into inodes.
        string Groups(Dictionary<string, Entry> t) => string.Join("|", t.Values.Where(e => e.Type != 'd').GroupBy(e => e.Ino)
            .Where(g => g.Count() > 1).Select(g => string.Join(",", g.Select(e => e.Path).Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal));
        Assert.Equal(Groups(expected), Groups(actual));
    }
}
