using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Live;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// Property tests against the real thing: a kernel overlayfs mount (image-like lower layer, upper, work, merged), a
/// seeded random sequence of operations done through the merged view with real syscalls (<see cref="LiveWorkload"/>),
/// and `diffkeeper snapshot UPPER` at random moments — what the recorder does with a container's upper directory.
/// At every captured moment the merged view is read (bytes, type, mode, owner, symlink target, hard-link groups,
/// xattrs) and so is the upper directory. Afterwards every moment is exported, and
///   1. the export laid over the original lower layer in a fresh read-only overlay (lowerdir=EXPORT:LOWER) must show
///      exactly the merged view of that moment;
///   2. the export must be the upper directory of that moment (whiteouts exactly where the kernel wrote them, none
///      where a path simply vanished, opaque and redirect marks included);
///   3. `diff` between consecutive moments must report every path that vanished, and no deletion of a path that is
///      still there.
/// Seeds vary the overlay's features: plain, redirect_dir=on (renamed lower directories become redirects) and
/// metacopy=on (metadata-only copy-ups, snapshot with --merged). A failure names the seed, the moment and the first
/// differing path; DIFFKEEPER_TEST_SEED=N replays one seed, DIFFKEEPER_LONG_TESTS=1 runs many more and longer.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class LiveOverlayTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private static bool Long => Environment.GetEnvironmentVariable("DIFFKEEPER_LONG_TESTS") == "1";

    /// <summary>Seeds 1..N, or only the one DIFFKEEPER_TEST_SEED names (a replay).</summary>
    public static IEnumerable<object[]> Seeds() =>
        (int.TryParse(Environment.GetEnvironmentVariable("DIFFKEEPER_TEST_SEED"), out var s) ? [s] : Enumerable.Range(1, Long ? 90 : 12))
        .Select(i => new object[] { i });

    private static string? Features(int seed) => (seed % 3) switch
    {
        1 => "redirect_dir=on",
        2 => "redirect_dir=on,metacopy=on",
        _ => null,
    };

    /// <summary>trusted.overlay.* is the overlay's own plumbing; the merged view never shows it anyway.</summary>
    private static bool UserVisible(string xattr) => !xattr.StartsWith("trusted.overlay.", StringComparison.Ordinal);

    /// <summary>What an upper layer says with overlay xattrs (the rest — origin, impure, nlink — is bookkeeping).</summary>
    private static bool UpperState(string xattr) =>
        UserVisible(xattr) || xattr is "trusted.overlay.opaque" or "trusted.overlay.redirect" or "trusted.overlay.metacopy";

    [SkippableTheory]
    [MemberData(nameof(Seeds))]
    public void EveryCapturedMoment_ExportedOverTheLowerLayer_IsTheMergedViewOfThatMoment(int seedCase)
    {
        Env.RequireRoot();
        Integration.Require(File.ReadAllText("/proc/filesystems").Contains("overlay"), "overlayfs not available");
        int seed = seedCase;
        var findings = new Findings(seed, Output);
        var features = Features(seed);
        bool metacopy = features?.Contains("metacopy") == true;
        Output.WriteLine($"seed {seed}: overlay options: {features ?? "defaults"}");

        string lower = Tmp.Sub("lower"), upper = Tmp.Sub("upper"), merged = Tmp.Sub("merged");
        Directory.CreateDirectory(lower);
        LiveWorkload.BuildImage(lower, seed);
        var moments = new List<(int Index, TreeState Merged, TreeState Upper, int Ops)>();
        var work = new LiveWorkload(merged, seed);
        var rng = new Random(seed ^ 0x2F2F);
        int ops = Long ? 150 : 45;
        using (Overlay.Writable(lower, upper, Tmp.Sub("work"), merged, features))
        {
            void Capture(int opsDone)
            {
                int k = moments.Count;
                string[] args = ["snapshot", upper, "--recording", "live", "--at", $"{k}s", "-q"];
                if (metacopy) args = [.. args, "--merged", merged];   // what the daemon knows: the mounted rootfs
                var r = Cli.Run(args);
                if (r.ExitCode != 0) { findings.Add($"snapshot {k}", r.Describe()); findings.ThrowIfAny(); }
                moments.Add((k, TreeReader.Read(merged, UserVisible), TreeReader.Read(upper, UpperState), opsDone));
            }
            Capture(0);
            for (int i = 1; i <= ops; i++)
            {
                work.Step();
                if (i == ops || rng.Next(6) == 0) Capture(i);
            }
        }
        for (int i = 0; i < work.Log.Count; i++) Output.WriteLine($"op {i + 1}: {work.Log[i]}");
        Output.WriteLine("moments after ops: " + string.Join(", ", moments.Select(m => $"{m.Index}s={m.Ops}")));
        // What the kernel put in the upper directory, so a reader can see which overlay behaviours a seed exercised.
        var last = moments[^1].Upper.Entries.Values;
        Output.WriteLine($"upper at the end: {last.Count(IsWhiteout)} whiteouts, " +
                         $"{last.Count(n => n.Xattrs.ContainsKey("trusted.overlay.opaque"))} opaque dirs, " +
                         $"{last.Count(n => n.Xattrs.ContainsKey("trusted.overlay.redirect"))} redirects, " +
                         $"{last.Count(n => n.Xattrs.ContainsKey("trusted.overlay.metacopy"))} metacopy files");

        foreach (var m in moments)
        {
            string where = $"moment {m.Index} ({m.Index}s, after op {m.Ops})";
            var exported = Tmp.Sub($"export-{m.Index}");
            var r = Cli.Run("export", "live", "--at", $"{m.Index}s", "--out", exported, "-q");
            if (r.ExitCode != 0) { findings.Add(where, "export failed: " + r.Describe()); continue; }
            using (var replay = new Overlay([exported, lower], Tmp.Sub($"replay-{m.Index}")))
                Compare(findings, where + " export over lower vs merged view", m.Merged, TreeReader.Read(replay.MountPoint, UserVisible), metacopyUpper: null);
            Compare(findings, where + " export vs upper dir", m.Upper, TreeReader.Read(exported, UpperState), metacopy ? m.Upper : null);
            Posix.RemoveTree(exported);
        }
        for (int i = 1; i < moments.Count; i++) CheckDeletionsInDiff(findings, moments[i - 1], moments[i], i);
        findings.ThrowIfAny();
    }

    /// <summary>
    /// Type, bytes, mode, owner, target, xattrs and hard-link groups (not times: the overlay's directory times are
    /// its own). With metacopy, a file the kernel copied up without data is recorded from the merged view, so the
    /// export holds the data the upper file lacks: such paths are compared by the merged-view oracle only.
    /// </summary>
    private static void Compare(Findings findings, string where, TreeState expected, TreeState actual, TreeState? metacopyUpper)
    {
        if (metacopyUpper is not null)
            foreach (var (p, n) in metacopyUpper.Entries.Where(e => e.Value.Xattrs.ContainsKey("trusted.overlay.metacopy")).ToList())
            {
                expected.Entries.Remove(p);
                actual.Entries.Remove(p);
            }
        var diffs = TreeComparer.Differences(expected, actual, new CompareOptions(Mtime: false, HardLinks: false));
        diffs.AddRange(LinkGroupDifferences(expected, actual));
        if (diffs.Count == 0) return;
        findings.Add(where, "first difference: " + diffs[0]);
        findings.AddRange(where, diffs.Skip(1));
    }

    /// <summary>The partition of non-directories into inodes must be the same on both sides.</summary>
    private static IEnumerable<string> LinkGroupDifferences(TreeState expected, TreeState actual)
    {
        static Dictionary<string, string> Groups(TreeState t)
        {
            // Whiteouts are left out: the kernel makes them links of one shared whiteout inode (plumbing, not state).
            var byInode = t.Entries.Where(e => e.Value.Kind != NodeKind.Dir && !IsWhiteout(e.Value)).GroupBy(e => e.Value.Inode)
                .Where(g => g.Count() > 1).ToList();
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var g in byInode)
            {
                var names = string.Join(", ", g.Select(e => "/" + RawPath.Display(e.Key)).Order(StringComparer.Ordinal));
                foreach (var e in g) result[e.Key] = names;
            }
            return result;
        }
        var want = Groups(expected);
        var got = Groups(actual);
        foreach (var p in want.Keys.Union(got.Keys).Order(StringComparer.Ordinal))
        {
            if (!expected.Entries.ContainsKey(p) || !actual.Entries.ContainsKey(p)) continue; // reported as missing/unexpected
            var w = want.GetValueOrDefault(p, "/" + RawPath.Display(p));
            var g = got.GetValueOrDefault(p, "/" + RawPath.Display(p));
            if (w != g) yield return $"hardlink: /{RawPath.Display(p)} is one inode with [{w}], got [{g}]";
        }
    }

    private static bool IsWhiteout(Node n) => n.Kind == NodeKind.CharDevice && n.Device == (0, 0);

    /// <summary>Every path that vanished between two moments is a deletion in `diff` (itself or an ancestor); nothing still there is.</summary>
    /// A path of the image that the container never touched is not in the recording (it holds the upper layer), so
    /// when an opaque directory hides it (rm -rf of an image directory, then mkdir) `diff` cannot name it: excused
    /// exactly when it was not in the upper directory before and an ancestor is opaque in the upper directory now.
    private void CheckDeletionsInDiff(Findings findings, (int Index, TreeState Merged, TreeState Upper, int Ops) from,
        (int Index, TreeState Merged, TreeState Upper, int Ops) to, int k)
    {
        TreeState before = from.Merged, after = to.Merged;
        string where = $"diff {k - 1}s {k}s";
        var r = Cli.Run("diff", "live", $"{k - 1}s", $"{k}s", "--json");
        if (r.ExitCode != 0) { findings.Add(where, r.Describe()); return; }
        var gone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var j in r.JsonLines())
        {
            var change = Str(j, "change");
            var path = RawPath.FromBase64(Str(j, "path_b64"));
            string? fromPath = Str(j, "from_path_b64") is { Length: > 0 } f ? RawPath.FromBase64(f) : null;
            var deleted = change == "deleted" ? path : change == "renamed" ? fromPath : null;
            if (deleted is not null)
            {
                gone.Add(deleted);
                if (after.Entries.TryGetValue(deleted, out var still) && before.Entries.TryGetValue(deleted, out var was) && still.Kind == was.Kind)
                    findings.Add(where, $"deleted row for /{RawPath.Display(deleted)}, which is still there ({still.Kind})");
            }
            if (change is "added" or "renamed" && !after.Entries.ContainsKey(path))
                findings.Add(where, $"{change} row for /{RawPath.Display(path)}, which is not there at {k}s");
        }
        foreach (var p in before.Entries.Keys.Where(p => !after.Entries.ContainsKey(p)))
        {
            bool covered = false;
            for (var a = p; a.Length > 0 && !covered; a = RawPath.Parent(a)) covered = gone.Contains(a) || (a != p && after.Entries.TryGetValue(a, out var n) && n.Kind != NodeKind.Dir);
            if (!covered && !from.Upper.Entries.ContainsKey(p))
                for (var a = RawPath.Parent(p); a.Length > 0 && !covered; a = RawPath.Parent(a))
                    covered = to.Upper.Entries.TryGetValue(a, out var u) && u.Xattrs.ContainsKey("trusted.overlay.opaque");
            if (!covered) findings.Add(where, $"vanished without a deleted row (itself or an ancestor): /{RawPath.Display(p)}");
        }
    }
}
