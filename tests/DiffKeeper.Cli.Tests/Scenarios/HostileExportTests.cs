using System.Diagnostics;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// Export must never write outside --out: recordings where a name is a symlink at one moment and a directory with
/// entries at another (the classic tar-slip shape), corrupted or truncated packed files, and a non-empty --out.
/// A sentinel directory beside --out must stay exactly as it was.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class HostileExportTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    [SkippableFact]
    public void SymlinkLaterReplacedByADirectory_ExportStaysInsideOut()
    {
        Env.RequireRoot();
        var sentinel = MakeSentinel();
        // Moment 0: names that point outside the export (absolute, relative climbing out, to the sentinel).
        var up0 = Tmp.Sub("up0");
        Directory.CreateDirectory(up0);
        Posix.Symlink(sentinel, up0 + "/evil");
        Posix.Symlink("../sentinel", up0 + "/climb");
        Posix.Symlink("../../../../../../" + sentinel.TrimStart('/'), up0 + "/deep");
        Directory.CreateDirectory(up0 + "/d");
        File.WriteAllText(up0 + "/d/f", "inside d");
        Snapshot(up0, "hostile", "0s");
        // Moment 1: the same names are now directories holding files (type change), and d became a symlink out.
        var up1 = Tmp.Sub("up1");
        foreach (var n in new[] { "evil", "climb", "deep" })
        {
            Directory.CreateDirectory(up1 + "/" + n);
            File.WriteAllText(up1 + "/" + n + "/pwned", "must stay inside --out");
        }
        Posix.Symlink(sentinel, up1 + "/d");
        Snapshot(up1, "hostile", "1s");

        var before = TreeReader.Read(sentinel);
        foreach (var at in new[] { "1s", "0s", "1s" })
        {
            var outDir = Tmp.Sub("out-" + Guid.NewGuid().ToString("N")[..6]);
            var r = Cli.Run("export", "hostile", "--at", at, "--out", outDir, "-q");
            AssertSentinelUntouched(sentinel, before, $"export --at {at}");
            if (r.ExitCode != 0) { AssertCleanError(r); continue; } // refusing is allowed; escaping is not
            var got = TreeReader.Read(outDir);
            if (at == "1s")
            {
                foreach (var n in new[] { "evil", "climb", "deep" })
                {
                    Assert.True(got.Entries.TryGetValue(n, out var e) && e.Kind == NodeKind.Dir, $"at 1s /{n} is the directory that replaced a symlink");
                    Assert.Equal("must stay inside --out"u8.ToArray(), got.Entries[n + "/pwned"].Content);
                }
                Assert.False(got.Entries.ContainsKey("d/f"), "at 1s /d is a symlink that replaced the directory: /d/f must be gone, but export wrote it");
                Assert.True(got.Entries["d"].Kind == NodeKind.Symlink, $"at 1s /d is a symlink, export made a {got.Entries["d"].Kind}");
            }
            else
            {
                Assert.True(got.Entries["evil"].Kind == NodeKind.Symlink, $"at 0s /evil is a symlink, export made a {got.Entries["evil"].Kind}");
                Assert.Equal(sentinel, got.Entries["evil"].Target);
                Assert.False(got.Entries.ContainsKey("evil/pwned"), "at 0s /evil is a symlink: nothing may be below it");
                Assert.Equal("inside d"u8.ToArray(), got.Entries["d/f"].Content);
            }
        }

        // The same as a tar archive: no absolute member names, no "..", and extracting it stays inside too.
        var tar = Tmp.Sub("hostile.tar");
        var t = Cli.Run("export", "hostile", "--at", "1s", "--out", tar, "-q");
        AssertSentinelUntouched(sentinel, before, "export --at 1s as tar");
        if (t.ExitCode != 0) { AssertCleanError(t); return; }
        foreach (var name in TarMemberNames(tar))
        {
            Assert.False(name.StartsWith('/'), $"absolute tar member name '{name}'");
            Assert.DoesNotContain("..", name.Split('/'));
        }
        var untar = Tmp.Sub("untar");
        Directory.CreateDirectory(untar);
        RunTool("tar", "-xf", tar, "-C", untar);
        AssertSentinelUntouched(sentinel, before, "extracting the exported tar");
    }

    [SkippableFact]
    public void CorruptedOrTruncatedPack_FailsWithExitFour_NeverWrongBytes()
    {
        var rng = new Random(77);
        var big = new byte[1_500_000];
        rng.NextBytes(big);
        var tree = MakeTree("tree", ("small.txt", "hello pack"), ("sub/other.txt", new string('x', 5000)));
        File.WriteAllBytes(tree + "/big.bin", big);
        Snapshot(tree, "packme", "0s");
        var pack = Tmp.Sub("rec.pack");
        Cli.Run("pack", "packme", "-o", pack, "-q").ExpectOk();
        // Sanity: the intact pack is a usable REC.
        Assert.Equal(big, Cli.Run("show", pack, "/big.bin", "--at", "0s").ExpectOk().Stdout);

        var original = File.ReadAllBytes(pack);
        var cases = new List<(string Name, byte[] Bytes)>();
        for (int i = 0; i < 6; i++)
        {
            var b = (byte[])original.Clone();
            int at = (int)((long)original.Length * (i + 1) / 8); // spread over the file, data and index alike
            b[at] ^= 0x5A; b[Math.Min(at + 1, b.Length - 1)] ^= 0xFF;
            cases.Add(($"flipped at {at}", b));
        }
        cases.Add(("truncated to half", original[..(original.Length / 2)]));
        cases.Add(("truncated by one byte", original[..^1]));
        cases.Add(("empty", []));

        var problems = new List<string>();
        foreach (var (name, bytes) in cases)
        {
            var bad = Tmp.Sub("bad.pack");
            File.WriteAllBytes(bad, bytes);
            var show = Cli.Run("show", bad, "/big.bin", "--at", "0s");
            if (show.ExitCode == 0 && !show.Stdout.AsSpan().SequenceEqual(big)) problems.Add($"{name}: show printed wrong bytes with exit 0");
            else if (show.ExitCode != 0 && show.ExitCode != 4) problems.Add($"{name}: show exit {show.ExitCode}, expected 4: {show.Stderr.Trim()}");
            var outDir = Tmp.Sub("out-" + Guid.NewGuid().ToString("N")[..6]);
            var export = Cli.Run("export", bad, "--at", "0s", "--out", outDir, "-q");
            if (export.ExitCode != 4) problems.Add($"{name}: export exit {export.ExitCode}, expected 4: {export.Stderr.Trim()}");
            if (Directory.Exists(outDir))
                foreach (var (rel, n) in TreeReader.Read(outDir).Entries.Where(e => e.Value.Kind == NodeKind.File))
                {
                    byte[] want = rel switch { "big.bin" => big, "small.txt" => "hello pack"u8.ToArray(), "sub/other.txt" => "x"u8.ToArray().SelectMany(x => Enumerable.Repeat(x, 5000)).ToArray(), _ => [] };
                    if (!n.Content.AsSpan().SequenceEqual(want)) problems.Add($"{name}: export left a wrong /{rel} behind");
                }
            if (export.ExitCode != 0) try { AssertCleanError(export); } catch (Exception e) { problems.Add($"{name}: {e.Message}"); }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [SkippableFact]
    public void ExportIntoANonEmptyDirectory_FailsAndTouchesNothing()
    {
        var tree = MakeTree("tree", ("a.txt", "from the recording"), ("keep.txt", "recorded keep"));
        Snapshot(tree, "rec", "0s");
        var outDir = Tmp.Sub("out");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(outDir + "/keep.txt", "precious");
        var before = TreeReader.Read(outDir);
        var r = Cli.Run("export", "rec", "--at", "0s", "--out", outDir, "-q");
        Assert.True(r.ExitCode is 1 or 2, $"expected an error exit (1 or 2): {r.Describe()}");
        AssertCleanError(r);
        Assert.Empty(TreeComparer.Differences(before, TreeReader.Read(outDir)));
    }

    private string MakeSentinel()
    {
        var s = Tmp.Sub("sentinel");
        Directory.CreateDirectory(s);
        File.WriteAllText(s + "/canary", "do not touch");
        return s;
    }

    private void AssertSentinelUntouched(string sentinel, TreeState before, string after)
    {
        var diffs = TreeComparer.Differences(before, TreeReader.Read(sentinel));
        Assert.True(diffs.Count == 0, $"{after} changed a directory outside --out:\n{string.Join("\n", diffs)}");
        // Nothing new beside --out either (only what the test itself made).
        foreach (var name in Posix.ListDir(Tmp.Path))
            Assert.True(name is "store" or "sentinel" or "up0" or "up1" or "hostile.tar" or "untar" || name.StartsWith("out-", StringComparison.Ordinal),
                $"{after} created '{RawPath.Display(name)}' beside --out");
    }

    private static List<string> TarMemberNames(string tar) =>
        RunTool("tar", "--list", "--file", tar).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

    private static string RunTool(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd();
        var e = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed: {e}");
        return o;
    }
}
