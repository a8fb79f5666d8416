using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Report;

/// <summary>`diffkeeper collect`: the CI artifact directory (packed recordings, reports, index) from a real store.</summary>
[Collection(CliCollection.Name)]
public sealed class CollectTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private string Record(string name, string start, string content)
    {
        var d = MakeTree("tree-" + name, ("etc/app.conf", content), ("data/x", name));
        Snapshot(d, name, start);
        File.WriteAllText(d + "/etc/app.conf", content + "changed\n");
        Snapshot(d, name, "2s");
        return Str(Cli.Run("ls", "--json").ExpectOk().JsonLines().Single(j => Str(j, "name") == name), "id");
    }

    [Fact]
    public void Collect_packs_every_recording_with_a_report_and_an_index()
    {
        var old = Record("old-job", "2026-01-01T00:00:00Z", "a=1\n");
        var recent = Record("recent-job", "2026-06-01T00:00:00Z", "b=2\n");
        var outDir = Tmp.Sub("artifact");
        var lines = Cli.Run("collect", "-o", outDir, "--json").ExpectOk().JsonLines();
        Assert.Equal(2, lines.Last().GetProperty("recordings").GetInt32());
        foreach (var id in new[] { old, recent })
        {
            var pack = Path.Combine(outDir, id + ".dkpack");
            var html = Path.Combine(outDir, id + ".html");
            Assert.True(File.Exists(pack) && File.Exists(html), id);
            // The packed file is a REC anywhere: the same timeline as from the store, and the same content.
            Assert.Equal(Cli.Run("timeline", id).ExpectOk().StdoutText, Cli.Run("timeline", pack).ExpectOk().StdoutText);
            Assert.Equal(Cli.Run("show", id, "/etc/app.conf", "--at", "start").ExpectOk().StdoutText,
                         Cli.Run("show", pack, "/etc/app.conf", "--at", "start").ExpectOk().StdoutText);
            // The report embeds the recording (its id and its paths).
            var page = File.ReadAllText(html);
            Assert.Contains($"\"id\":\"{id}\"", page);
            Assert.Contains("/etc/app.conf", page);
        }
        using (var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "index.json"))))
        {
            var recs = index.RootElement.GetProperty("recordings").EnumerateArray().ToList();
            Assert.Equal(new[] { old, recent }.Order(), recs.Select(r => r.GetProperty("id").GetString()!).Order());
            Assert.All(recs, r => Assert.Equal(r.GetProperty("id").GetString() + ".html", r.GetProperty("report").GetString()));
        }
        var indexHtml = File.ReadAllText(Path.Combine(outDir, "index.html"));
        Assert.Contains($"href=\"{old}.html\"", indexHtml);
        Assert.Contains($"href=\"{recent}.dkpack\"", indexHtml);

        // --since: only recordings started at or after it.
        var since = Tmp.Sub("since");
        Cli.Run("collect", "-o", since, "--since", "2026-03-01T00:00:00Z").ExpectOk();
        Assert.Equal([recent + ".dkpack", recent + ".html", "index.html", "index.json"],
            Directory.GetFiles(since).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray());
        // --failed: snapshot recordings have no exit status, so none is known to have failed.
        var failed = Tmp.Sub("failed");
        var f = Cli.Run("collect", "-o", failed, "--failed", "--json").ExpectOk().JsonLines().Last();
        Assert.Equal(0, f.GetProperty("recordings").GetInt32());
        Assert.Equal(2, f.GetProperty("skipped").GetInt32());
        Assert.Contains("no recordings matched", File.ReadAllText(Path.Combine(failed, "index.html")));

        // A non-empty target and a bad --since are usage errors; --help shows the options.
        AssertCleanError(Cli.Run("collect", "-o", outDir).ExpectExit(2));
        AssertCleanError(Cli.Run("collect", "-o", Tmp.Sub("x"), "--since", "yesterday").ExpectExit(2));
        AssertCleanError(Cli.Run("collect").ExpectExit(2));
        Assert.Contains("--failed", Cli.Run("collect", "--help").ExpectOk().StdoutText);
    }
}
