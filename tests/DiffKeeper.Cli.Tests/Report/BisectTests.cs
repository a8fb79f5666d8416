using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Report;

/// <summary>
/// `diffkeeper bisect` on real recordings (made with `snapshot`) whose first bad moment is known because the test
/// put it there; the checks run through sh -c in the exported state.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class BisectTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private const string Check = "grep -qx 'port=8080' etc/app.conf && test \"$DIFFKEEPER_STATE\" = \"$PWD\"";

    /// <summary>n moments 0..n-1 s: the config is good before moment <paramref name="firstBad"/>, bad from it on; a log grows at every moment.</summary>
    private void Record(string name, int n, int firstBad)
    {
        var d = Tmp.Sub("upper-" + name);
        Directory.CreateDirectory(d + "/etc");
        Directory.CreateDirectory(d + "/var/log");
        for (int m = 0; m < n; m++)
        {
            File.WriteAllText(d + "/etc/app.conf", m < firstBad ? "port=8080\n" : $"port={8080 + m}\n");
            File.AppendAllText(d + "/var/log/app.log", $"moment {m}\n");
            Snapshot(d, name, m == 0 ? "2026-11-30T10:00:00Z" : $"{m}s");
        }
    }

    [Fact]
    public void Finds_the_first_bad_moment_of_64_in_at_most_7_probes()
    {
        int firstBad = new Random(Env.Seed(64)).Next(1, 64);
        Output.WriteLine($"first bad moment: {firstBad}s");
        Record("cfg", 64, firstBad);
        var tmp = Tmp.Sub("tmp");
        Directory.CreateDirectory(tmp);
        var r = Cli.RunRaw(["--store", StoreDir, "bisect", "cfg", "--test", Check, "--json"], new Dictionary<string, string> { ["TMPDIR"] = tmp }).ExpectOk();
        var lines = r.JsonLines();
        var probes = lines.Where(l => l.TryGetProperty("probe", out _)).ToList();
        var result = lines.Single(l => l.TryGetProperty("first_bad", out _));
        Output.WriteLine(r.StdoutText);
        Assert.InRange(probes.Count, 1, 7);
        Assert.Equal(probes.Count, result.GetProperty("probes").GetInt32());
        Assert.Equal(64, result.GetProperty("moments").GetInt32());
        var bad = result.GetProperty("first_bad");
        Assert.Equal($"{firstBad}s", Str(bad, "offset"));
        Assert.Equal(Rfc(firstBad), Str(bad, "time"));
        Assert.Equal($"{firstBad - 1}s", Str(result.GetProperty("last_good"), "offset"));
        // Every probe's verdict agrees with what the recording holds at that moment.
        foreach (var p in probes)
        {
            int m = int.Parse(Str(p, "offset").TrimEnd('s'));
            Assert.Equal(m < firstBad ? "good" : "bad", Str(p, "result"));
        }
        // The changes into the bad moment: the config (and the log, which changes at every moment).
        var changes = result.GetProperty("changes").EnumerateArray().Select(c => Str(c, "change") + " " + Str(c, "path")).ToList();
        Assert.Contains("modified etc/app.conf", changes);
        Assert.Contains("modified var/log/app.log", changes);
        Assert.Equal(2, changes.Count);
        // No exported state is left behind.
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));

        // Human output: each probe, then the first bad moment as timeline prints it.
        var h = Cli.RunRaw(["--store", StoreDir, "bisect", "cfg", "--test", Check], new Dictionary<string, string> { ["TMPDIR"] = tmp }).ExpectOk().StdoutText;
        Assert.Equal(probes.Count, h.Split('\n').Count(l => l.StartsWith("probe ", StringComparison.Ordinal)));
        Assert.Contains($"first bad moment: +{firstBad}s {Rfc(firstBad)}", h);
        Assert.Contains("  M /etc/app.conf", h);
        Assert.Contains("processes: none recorded", h);
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }

    [Fact]
    public void Range_limits_the_search_and_edge_cases_are_clear()
    {
        Record("cfg", 10, 6);
        // --from/--to: only moments 2..8 are candidates.
        var r = Cli.Run("bisect", "cfg", "--test", Check, "--from", "2s", "--to", "8s", "--json").ExpectOk().JsonLines();
        var result = r.Single(l => l.TryGetProperty("first_bad", out _));
        Assert.Equal("6s", Str(result.GetProperty("first_bad"), "offset"));
        Assert.Equal(7, result.GetProperty("moments").GetInt32());
        Assert.All(r.Where(l => l.TryGetProperty("probe", out _)), p => Assert.InRange(int.Parse(Str(p, "offset").TrimEnd('s')), 2, 8));
        // Bad already at the first moment in range: that moment is reported, with no last good moment.
        var early = Cli.Run("bisect", "cfg", "--test", Check, "--from", "7s", "--json").ExpectOk().JsonLines().Single(l => l.TryGetProperty("first_bad", out _));
        Assert.Equal("7s", Str(early.GetProperty("first_bad"), "offset"));
        Assert.Equal(JsonValueKind.Null, early.GetProperty("last_good").ValueKind);
        // Good at the last moment: nothing to find (exit 3, one clean line).
        var none = Cli.Run("bisect", "cfg", "--test", Check, "--to", "5s").ExpectExit(3);
        AssertCleanError(none);
        Assert.Contains("no bad moment", none.Stderr);
        // The check's own output goes to stderr, never into stdout's probe lines.
        var noisy = Cli.Run("bisect", "cfg", "--test", "echo NOISE; " + Check, "--json").ExpectOk();
        Assert.DoesNotContain("NOISE", noisy.StdoutText);
        Assert.Contains("NOISE", noisy.Stderr);
        // --keep leaves the first bad state for a look, and says where.
        var kept = Cli.Run("bisect", "cfg", "--test", Check, "--keep", "--json").ExpectOk().JsonLines().Single(l => l.TryGetProperty("first_bad", out _));
        var dir = Str(kept, "kept");
        try { Assert.Equal("port=8086\n", File.ReadAllText(Path.Combine(dir, "etc/app.conf"))); }
        finally { Directory.Delete(dir, true); }
        // Errors: --replay with --keep, or without an image (a snapshot recording names none); no --test; a time
        // outside the recording; an unknown recording. (bisect --replay itself: tests/DiffKeeper.Oci.Tests/ReplayTests.)
        AssertCleanError(Cli.Run("bisect", "cfg", "--test", "true", "--replay", "--keep").ExpectExit(2));
        var replay = Cli.Run("bisect", "cfg", "--test", "true", "--replay").ExpectExit(2);
        AssertCleanError(replay);
        Assert.Contains("--image", replay.Stderr);
        AssertCleanError(Cli.Run("bisect", "cfg").ExpectExit(2));
        AssertCleanError(Cli.Run("bisect", "cfg", "--test", "true", "--from", "1h").ExpectExit(3));
        AssertCleanError(Cli.Run("bisect", "nope", "--test", "true").ExpectExit(3));
        var help = Cli.Run("bisect", "--help").ExpectOk().StdoutText;
        Assert.Contains("--replay", help);
    }

    private static string Rfc(int s) => new DateTime(2026, 11, 30, 10, 0, 0, DateTimeKind.Utc).AddSeconds(s).ToString("yyyy-MM-dd'T'HH:mm:ss") + ".000000000Z";
}
