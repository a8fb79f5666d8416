using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// Property tests: a random, seeded history of upper-layer snapshots (see <see cref="History"/>, itself checked
/// against the kernel's overlayfs in <see cref="HistoryModelTests"/>) is recorded with `snapshot`; then every moment
/// is exported and compared with the modelled merged state, random files are read back with `show`, random pairs of
/// moments are compared with `diff`, and a tar export is extracted with GNU tar and compared too.
/// A failure prints the seed; DIFFKEEPER_TEST_SEED=N replays it.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class RandomHistoryTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private const int Steps = 7;

    [SkippableTheory]
    [InlineData(101)]
    [InlineData(202)]
    [InlineData(303)]
    public void EveryRecordedMoment_ReadsBackAsTheModelledState(int seedBase)
    {
        Env.RequireRoot();
        int seed = Env.Seed(seedBase);
        var findings = new Findings(seed, Output);
        var rng = new Random(seed ^ 0x5A5A);
        var moments = new History(seed).Generate(Steps);
        const string rec = "prop";

        foreach (var m in moments)
        {
            var upper = Tmp.Sub($"upper-{m.Index}");
            Directory.CreateDirectory(upper);
            UpperLayer.Write(upper, m.State, m.Changes);
            Output.WriteLine($"step {m.Index}: {string.Join("; ", m.Log.Select(RawPath.Display))}");
            var r = Cli.Run("snapshot", upper, "--recording", rec, "--at", $"{m.Index}s", "--json");
            if (r.ExitCode != 0) { findings.Add($"snapshot {m.Index}", r.Describe()); findings.ThrowIfAny(); }
            var summary = r.JsonLines();
            if (summary.Count != 1 || !summary[0].TryGetProperty("recording", out _))
                findings.Add($"snapshot {m.Index}", $"--json should print one object with \"recording\": {r.StdoutText}");
        }

        foreach (var m in moments) CheckExport(rec, m, findings);
        CheckShow(rec, moments, rng, findings);
        for (int i = 0; i < 3; i++)
        {
            int a = rng.Next(Steps), b = rng.Next(Steps);
            if (a > b) (a, b) = (b, a);
            CheckDiff(rec, moments[a], moments[b], findings);
        }
        CheckTarExport(rec, moments[rng.Next(Steps)], findings);
        findings.ThrowIfAny();
    }

    private void CheckExport(string rec, Moment m, Findings findings)
    {
        var outDir = Tmp.Sub($"export-{m.Index}");
        var r = Cli.Run("export", rec, "--at", $"{m.Index}s", "--out", outDir, "-q");
        if (r.ExitCode != 0) { findings.Add($"export {m.Index}s", r.Describe()); return; }
        findings.AddRange($"export {m.Index}s", TreeComparer.Differences(m.State, TreeReader.Read(outDir)));
        Posix.RemoveTree(outDir);
    }

    private void CheckShow(string rec, List<Moment> moments, Random rng, Findings findings)
    {
        for (int i = 0; i < 10; i++)
        {
            var m = moments[rng.Next(moments.Count)];
            var candidates = m.State.Entries.Where(e => e.Value.Kind is NodeKind.File or NodeKind.Symlink).ToList();
            if (candidates.Count == 0) continue;
            var (path, node) = candidates[rng.Next(candidates.Count)];
            string where = $"show /{RawPath.Display(path)} --at {m.Index}s";
            var r = Cli.Run("show", rec, "/" + path, "--at", $"{m.Index}s");
            if (r.ExitCode != 0) { findings.Add(where, r.Describe()); continue; }
            byte[] want = node.Kind == NodeKind.File ? node.Content : RawPath.ToBytes(node.Target);
            bool ok = r.Stdout.AsSpan().SequenceEqual(want) ||
                      (node.Kind == NodeKind.Symlink && r.Stdout.AsSpan().SequenceEqual([.. want, (byte)'\n']));
            if (!ok) findings.Add(where, $"printed {r.Stdout.Length} bytes, expected {want.Length} bytes ({node.Kind})");
        }
        for (int i = 0; i < 6; i++)
        {
            var m = moments[rng.Next(moments.Count)];
            var all = m.State.Entries.ToList();
            var (path, node) = all[rng.Next(all.Count)];
            string where = $"show --json /{RawPath.Display(path)} --at {m.Index}s";
            var r = Cli.Run("show", rec, "/" + path, "--at", $"{m.Index}s", "--json");
            if (r.ExitCode != 0) { findings.Add(where, r.Describe()); continue; }
            var lines = r.JsonLines();
            if (lines.Count != 1) { findings.Add(where, $"expected one JSON object, got {lines.Count}"); continue; }
            findings.AddRange(where, ShowJsonProblems(lines[0], path, node));
        }
        // A path that exists at some moment but not at another: `show` at the other moment is "not found".
        foreach (var m in moments.Skip(1))
        {
            var gone = moments[m.Index - 1].State.Entries.Keys.FirstOrDefault(k => !m.State.Entries.ContainsKey(k));
            if (gone is null) continue;
            var r = Cli.Run("show", rec, "/" + gone, "--at", $"{m.Index}s");
            if (r.ExitCode != 3) findings.Add($"show deleted /{RawPath.Display(gone)} --at {m.Index}s", "expected exit 3: " + r.Describe());
            break;
        }
    }

    private static IEnumerable<string> ShowJsonProblems(JsonElement j, string path, Node node)
    {
        string[] types = node.Kind switch
        {
            NodeKind.File => ["file"], NodeKind.Dir => ["dir"], NodeKind.Symlink => ["symlink"],
            NodeKind.Fifo => ["fifo"], _ => ["char", "chardev", "char-device", "chr", "device"],
        };
        if (!types.Contains(Str(j, "type"))) yield return $"type '{Str(j, "type")}', expected {types[0]}";
        if (Str(j, "path_b64") != RawPath.ToBase64(path)) yield return $"path_b64 '{Str(j, "path_b64")}' is not the path's bytes";
        if (node.Kind != NodeKind.Symlink)
        {
            uint mode = 0;
            bool parsed = Str(j, "mode").Length > 0 && Str(j, "mode").All(c => c is >= '0' and <= '7');
            if (parsed) mode = Convert.ToUInt32(Str(j, "mode"), 8) & 0xFFF;
            if (!parsed || mode != node.Mode) yield return $"mode '{Str(j, "mode")}', expected {Convert.ToString(node.Mode, 8).PadLeft(4, '0')}";
        }
        if (!j.TryGetProperty("uid", out var uid) || uid.ValueKind != JsonValueKind.Number || uid.GetUInt32() != node.Uid) yield return $"uid, expected {node.Uid}";
        if (!j.TryGetProperty("gid", out var gid) || gid.ValueKind != JsonValueKind.Number || gid.GetUInt32() != node.Gid) yield return $"gid, expected {node.Gid}";
        if (node.Kind == NodeKind.File && (!j.TryGetProperty("size", out var size) || size.GetInt64() != node.Content.Length))
            yield return $"size, expected {node.Content.Length}";
        if (!Rfc3339.TryParseNs(Str(j, "mtime"), out long mtime) || mtime != node.MtimeNs)
            yield return $"mtime '{Str(j, "mtime")}', expected {Rfc3339.Format(node.MtimeNs)}";
        if (node.Kind == NodeKind.Symlink && Str(j, "target") != Encoding.UTF8.GetString(RawPath.ToBytes(node.Target)))
            yield return $"target '{Str(j, "target")}', expected '{RawPath.Display(node.Target)}'";
        var x = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        if (j.TryGetProperty("xattrs", out var xs) && xs.ValueKind == JsonValueKind.Object)
            foreach (var p in xs.EnumerateObject())
                if (p.Name.StartsWith("user.", StringComparison.Ordinal)) x[p.Name] = Convert.FromBase64String(p.Value.GetString() ?? "");
        if (!node.SameXattrs(node with { Xattrs = x })) yield return $"xattrs {xs}, expected {node.Xattrs.Count} user.* attributes";
    }

    private void CheckDiff(string rec, Moment a, Moment b, Findings findings)
    {
        string where = $"diff {a.Index}s {b.Index}s";
        var r = Cli.Run("diff", rec, $"{a.Index}s", $"{b.Index}s", "--json");
        if (r.ExitCode != 0) { findings.Add(where, r.Describe()); return; }
        var rows = new List<(string, string, string?)>();
        foreach (var j in r.JsonLines())
        {
            var from = Str(j, "from_path_b64");
            rows.Add((Str(j, "change"), RawPath.FromBase64(Str(j, "path_b64")), from.Length > 0 ? RawPath.FromBase64(from) : null));
        }
        findings.AddRange(where, ExpectedDiff.Check(a.State, b.State, rows));
    }

    private void CheckTarExport(string rec, Moment m, Findings findings)
    {
        string where = $"export {m.Index}s as tar";
        var tar = Tmp.Sub($"moment-{m.Index}.tar");
        var r = Cli.Run("export", rec, "--at", $"{m.Index}s", "--out", tar, "-q");
        if (r.ExitCode != 0) { findings.Add(where, r.Describe()); return; }
        var dir = Tmp.Sub($"untar-{m.Index}");
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo("tar", ["--extract", "--file", tar, "--directory", dir, "--preserve-permissions",
            "--same-owner", "--numeric-owner", "--xattrs", "--xattrs-include=user.*"]) { RedirectStandardError = true };
        using (var p = Process.Start(psi)!)
        {
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) { findings.Add(where, $"GNU tar could not extract it (exit {p.ExitCode}): {err}"); return; }
        }
        // GNU tar does not restore the times of symlinks.
        findings.AddRange(where, TreeComparer.Differences(m.State, TreeReader.Read(dir), new CompareOptions(SymlinkMtime: false)));
    }
}
