using System.Text;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Report;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Report.Tests;

/// <summary>A recorder-style recording: lifecycle events, change events with pid/comm, a gap, an OOM and exit 137.</summary>
[Collection(CliCollection.Name)]
public sealed class RecorderRecordingTests(CliBinary binary, ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _tmp = new("dk-report-test-", onDisk: true);
    private static readonly long T0 = 1_795_000_000L * Moments.NsPerSecond;   // 2026-11-18T..., a whole second
    private static long At(double s) => T0 + (long)(s * Moments.NsPerSecond);

    private string Store => _tmp.Sub("store");

    /// <summary>What diffkeeperd writes for a container whose config is broken by `sed` at +2s and that then dies.</summary>
    private void Record()
    {
        var upper = _tmp.Sub("upper");
        Directory.CreateDirectory(upper + "/etc");
        using var store = RecordingStore.Open(Store);
        var rec = store.CreateRecording(new RecordingInfo
        {
            Name = "web-1", ContainerId = "c0ffee1234", Namespace = "default", Image = "docker.io/library/busybox:latest",
            Host = "node-a", Kernel = "6.18", Start = T0,
        });
        var ing = new Ingester(store);
        store.AddEvents(rec, [
            new RecordedEvent { Time = At(0), Kind = EventKinds.Create },
            new RecordedEvent { Time = At(0.1), Kind = EventKinds.Start, Pid = 1, Comm = "sh" },
        ]);
        File.WriteAllText(upper + "/etc/app.conf", "port=8080\nmode=prod\n");
        ing.IngestTree(rec, upper, At(1));
        store.AddEvents(rec, [new RecordedEvent { Time = At(1), Kind = "write", Path = "etc/app.conf"u8.ToArray(), Pid = 17, Comm = "cp" }]);
        store.AddEvents(rec, [new RecordedEvent { Time = At(1.5), Kind = EventKinds.Gap, Detail = "ring buffer full: 312 events lost" }]);
        File.WriteAllText(upper + "/etc/app.conf", "port=80 80\nmode=prod\n");
        ing.IngestTree(rec, upper, At(2));
        store.AddEvents(rec, [
            new RecordedEvent { Time = At(2), Kind = "write", Path = "etc/app.conf"u8.ToArray(), Pid = 42, Comm = "sed" },
            new RecordedEvent { Time = At(2.4), Kind = EventKinds.Oom },
            new RecordedEvent { Time = At(2.5), Kind = EventKinds.Exit, Detail = "137" },
        ]);
    }

    private static string Rfc(double s) => Moments.Format(At(s));

    [SkippableFact]
    public void Report_shows_processes_lifecycle_gaps_and_the_exit_status()
    {
        Integration.Require(Chromium.Executable != null, "needs chromium (apt-get install chromium)");
        Record();
        var cli = new DiffKeeperCli(binary.Executable, Store);
        var html = _tmp.Sub("web-1.html");
        cli.Run("report", "web-1", "-o", html).ExpectOk();
        using var b = new Chromium();
        b.Open(new Uri(html).AbsoluteUri + "#t=2s&path=/etc/app.conf");
        Assert.Equal("web-1", b.Text("#rec-name"));
        Assert.Equal("exit 137", b.Text(".pill.bad"));
        Assert.Contains("docker.io/library/busybox:latest", b.Text("header"));
        Assert.Contains("ring buffer full: 312 events lost", b.Text("#gaps"));
        var lanes = b.Eval("[...document.querySelectorAll('#timeline .lane-label')].map(t => t.textContent)").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("sed [42]", lanes);
        Assert.Contains("cp [17]", lanes);
        // Lifecycle events are markers in their own lane (start's pid 1 does not make a process lane).
        Assert.DoesNotContain("sh [1]", lanes);
        Assert.Equal(1, b.Eval("document.querySelectorAll('#timeline rect.mark.k-create').length").GetInt32());
        Assert.Equal(1, b.Eval("document.querySelectorAll('#timeline rect.mark.k-start').length").GetInt32());
        Assert.Equal(1, b.Eval("document.querySelectorAll('#timeline rect.mark.k-gap').length").GetInt32());
        Assert.Equal(1, b.Eval("document.querySelectorAll('#timeline rect.mark.k-exit').length").GetInt32());
        Assert.Equal(1, b.Eval("document.querySelectorAll('#timeline rect.mark.k-oom').length").GetInt32());
        // At +2s: the change and the process that made it, the content and the diff.
        Assert.Equal("+2s", b.Text("#moment-offset"));
        Assert.Contains("sed [42]", b.Text("#moment-events"));
        Assert.Equal("port=80 80\nmode=prod\n", b.Text("#content pre.text"));
        var diff = b.Eval("[...document.querySelectorAll('#diff div')].map(d => d.textContent)").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("- port=8080", diff);
        Assert.Contains("+ port=80 80", diff);
        // End is the exit (+2.5s); the gap's moment can be reached with the keyboard.
        b.Press("End");
        Assert.Equal("+2.5s", b.Text("#moment-offset"));
        Assert.Contains("exit", b.Text("#moment-events"));
        b.Press("ArrowLeft");
        b.Press("ArrowLeft");
        b.Press("ArrowLeft");
        Assert.Equal("+1.5s", b.Text("#moment-offset"));
        Assert.Contains("ring buffer full", b.Text("#moment-events"));
        b.Screenshot(Path.Combine(Chromium.ArtifactDir, "7-recorder-recording.png"));
        Assert.All(b.Requests, r => Assert.StartsWith("file://", r));
        Assert.Empty(b.ConsoleErrors);
    }

    [Fact]
    public void Bisect_names_the_process_that_made_the_bad_change()
    {
        Record();
        var cli = new DiffKeeperCli(binary.Executable, Store);
        var r = cli.Run("bisect", "web-1", "--test", "grep -qx 'port=8080' etc/app.conf").ExpectOk().StdoutText;
        output.WriteLine(r);
        Assert.Contains($"first bad moment: +2s {Rfc(2)}", r);
        Assert.Contains($"last good moment: +1.5s {Rfc(1.5)}", r);
        Assert.Contains("  M /etc/app.conf", r);
        Assert.Contains("  sed [42]: write /etc/app.conf", r);
        // Moments: create, start, 1s, gap, 2s, oom, exit = 7; a binary search probes at most 4 of them.
        Assert.InRange(r.Split('\n').Count(l => l.StartsWith("probe ", StringComparison.Ordinal)), 1, 4);
    }

    public void Dispose() => _tmp.Dispose();
}
