using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DiffKeeper.Shim.IntegrationTests.Conformance;
using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.IntegrationTests.FlightRecorder;

/// <summary>
/// The recorder issue's tests, end to end: containers run by a real containerd under io.containerd.diffkeeper.v1,
/// recorded by a real diffkeeperd through the kernel's eBPF hooks, read back with the real CLI. The expected state at
/// every moment is the container's real overlay upper directory at that moment (read from the live mount), never our
/// own idea of it.
/// </summary>
[Collection(RecorderCollection.Name)]
public sealed class FlightRecorderTests(RecorderFixture fixture, ITestOutputHelper output) : ChecklistTest(fixture)
{
    private const string Runtime = ShimRuntimes.DiffKeeper;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly RecorderFixture _fx = fixture;

    /// <summary>One step of the container's script: what runs (as a `ctr task exec`), which process makes the change
    /// and which path the timeline must show it on.</summary>
    private sealed record Step(string What, string Comm, string Path, params string[] Argv);

    private static readonly Step[] Steps =
    [
        new("mkdir", "mkdir", "w", "mkdir", "/w"),
        new("write", "sh", "w/a.txt", "sh", "-c", "echo one > /w/a.txt"),
        new("append", "sh", "w/a.txt", "sh", "-c", "echo two >> /w/a.txt"),
        new("write by another program", "dd", "w/b.bin", "dd", "if=/dev/urandom", "of=/w/b.bin", "bs=4096", "count=8"),
        new("truncate", "truncate", "w/b.bin", "truncate", "-s", "1000", "/w/b.bin"),
        new("rename", "mv", "w/a.txt", "mv", "/w/a.txt", "/w/c.txt"), // the timeline's rename row names the old path (-> new)
        new("delete a file it created", "rm", "w/b.bin", "rm", "/w/b.bin"),
        new("edit an image file (copy-up)", "sh", "etc/passwd", "sh", "-c", "echo extra:x:1:1::/:/bin/sh >> /etc/passwd"),
        new("delete an image file (whiteout)", "rm", "bin/yes", "rm", "/bin/yes"),
        new("chmod", "chmod", "w/c.txt", "chmod", "600", "/w/c.txt"),
        new("symlink", "ln", "w/link", "ln", "-s", "c.txt", "/w/link"),
        new("hard link", "ln", "w/hard", "ln", "/w/c.txt", "/w/hard"),
        new("mkdir -p", "mkdir", "w/d/e", "mkdir", "-p", "/w/d/e"),
        new("rmdir", "rmdir", "w/d/e", "rmdir", "/w/d/e"),
        new("mmap write", "dkwork", "w/c.txt", "dkwork", "mmapwrite", "/w/c.txt", "XY"),
    ];

    private sealed record Moment(Step Step, DateTime Before, DateTime After, Dictionary<string, string> Upper);

    [SkippableFact]
    public async Task EveryStep_IsRecordedWithItsProcessAndTime_AndEveryMomentExportsAsTheUpperDirWas()
    {
        Fx.Require(Runtime);
        var id = await RunSleeperAsync("fr", Runtime, "steps");
        var upper = UpperDirOf(id);
        var moments = new List<Moment>();
        for (var i = 0; i < Steps.Length; i++)
        {
            var step = Steps[i];
            var before = DateTime.UtcNow;
            AssertExit(await Ctr(new[] { "task", "exec", "--exec-id", $"s{i}", id }.Concat(step.Argv).ToArray()), 0);
            await Task.Delay(300); // one step per 300 ms, as the script
            var after = DateTime.UtcNow;
            moments.Add(new Moment(step, before, after, await ManifestAsync(upper)));

            if (step.What == "append")
            {
                // Live reading: the running container's recording, read while the daemon writes, is at most one frame
                // behind (the step finished 300 ms ago).
                var show = await _fx.Dk("show", id, "/w/a.txt");
                AssertExit(show, 0);
                Assert.Equal("one\ntwo\n", show.Stdout);
            }
        }

        await KillAndRemoveAsync(id);
        var ls = await WaitForExitRecordedAsync(id, 137);
        var timeline = await TimelineAsync(id);
        var failures = new List<string>();
        foreach (var m in moments)
        {
            var from = m.Before - RecorderFixture.Frame;
            var to = m.After + RecorderFixture.Frame;
            var rows = timeline.Where(r => r.Path == m.Step.Path).ToList();
            if (!rows.Any(r => r.Comm == m.Step.Comm && r.Time >= from && r.Time <= to))
                failures.Add($"step '{m.Step.What}': no timeline row for {m.Step.Path} by {m.Step.Comm} between {from:O} and {to:O}; rows for the path:\n    " +
                             string.Join("\n    ", rows.Select(r => r.Line)));
        }

        foreach (var m in moments)
        {
            var exported = await ExportAsync(id, m.After.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture));
            var diff = Compare(m.Upper, exported);
            if (diff != null) failures.Add($"export --at after step '{m.Step.What}' ({m.After:O}) differs from the upper dir then: {diff}");
        }

        // The exit state equals the upper dir as the container left it, byte for byte.
        var end = Compare(moments[^1].Upper, await ExportAsync(id, "end"));
        if (end != null) failures.Add("export --at end differs from the upper dir at exit: " + end);
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n\ntimeline:\n" + string.Join("\n", timeline.Select(r => r.Line)) + "\nls: " + ls);
    }

    [SkippableFact]
    public async Task DaemonKilledMidRecording_ContainerUnaffected_GapShown_ExitStateCompleteAfterRestart()
    {
        Fx.Require(Runtime);
        var id = await RunSleeperAsync("fr", Runtime, "dkill");
        var upper = UpperDirOf(id);
        try
        {
            AssertExit(await Ctr("task", "exec", "--exec-id", "a", id, "sh", "-c", "echo before > /before.txt"), 0);
            await Task.Delay(300);
            await _fx.KillDaemonAsync();

            // The container goes on as if nothing happened: an exec runs and writes at its normal pace.
            var sw = Stopwatch.StartNew();
            AssertExit(await Ctr("task", "exec", "--exec-id", "b", id, "sh", "-c", "echo during > /during.txt; mkdir /d; echo x > /d/x"), 0);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"an exec took {sw.Elapsed} with the daemon dead");
            var atExit = await ManifestAsync(upper);
            await KillAndRemoveAsync(id);
        }
        finally
        {
            if (_fx.DaemonPid == null) await _fx.StartDaemonAsync();
        }

        await WaitForExitRecordedAsync(id, 137);
        var timeline = await TimelineAsync(id);
        Assert.True(timeline.Any(r => r.Kind == "gap"), "no gap for the time the daemon was dead:\n" + string.Join("\n", timeline.Select(r => r.Line)));
        var exported = await ExportAsync(id, "end");
        Assert.Contains("during.txt", exported.Keys);
        Assert.Contains("d/x", exported.Keys);
        Assert.Contains("before.txt", exported.Keys);
    }

    [SkippableFact]
    public async Task KilledShim_TheCrashPathRecordsTheExitState()
    {
        Fx.Require(Runtime);
        var id = NewId("fr", Runtime, "shimkill");
        AssertExit(await Ctr("run", "-d", "--runtime", Runtime, Image, id, "sh", "-c", "mkdir /k; echo y > /k/g; exec sleep 1000"), 0);
        await Fx.WaitForStatusAsync(id, "RUNNING");
        var upper = UpperDirOf(id);
        await WaitUntilAsync(() => File.Exists(Path.Combine(upper, "k", "g")), "the container's file never appeared");
        var atKill = await ManifestAsync(upper);
        Assert.Equal(0, Libc.Kill(await Fx.ShimPidAsync(id), Libc.SIGKILL));

        // containerd runs the shim's `delete` subcommand, which freezes the exit state; the daemon ingests it.
        await WaitForExitRecordedAsync(id, 137);
        var diff = Compare(atKill, await ExportAsync(id, "end"));
        Assert.True(diff == null, "the crash path's exit state differs from the upper dir: " + diff);
    }

    [SkippableFact]
    public async Task DaemonAbsentAtStart_TheShimSpools_TheDaemonIngestsWhenItStarts()
    {
        Fx.Require(Runtime);
        var id = NewId("fr", Runtime, "absent");
        await _fx.StopDaemonAsync();
        try
        {
            var sw = Stopwatch.StartNew();
            AssertExit(await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--runtime", Runtime, Image, id, "sh", "-c", "echo z > /z; exit 5"), 5);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"run --rm took {sw.Elapsed} with no daemon");
            var spool = Path.Combine(_fx.StoreDir, "spool", PrivateContainerd.Namespace);
            var entry = Directory.Exists(spool) ? Directory.GetDirectories(spool, id + "-*").SingleOrDefault() : null;
            Assert.True(entry != null && File.Exists(Path.Combine(entry, "manifest.json")), $"no complete spool entry for {id} under {spool}");
            Assert.True(File.Exists(Path.Combine(entry!, "upper", "z")), "the spool entry does not hold the container's file");
        }
        finally { await _fx.StartDaemonAsync(); }

        await WaitForExitRecordedAsync(id, 5);
        var timeline = await TimelineAsync(id);
        Assert.True(timeline.Any(r => r.Kind == "gap"), "the recording does not say the recorder was absent:\n" + string.Join("\n", timeline.Select(r => r.Line)));
        Assert.Contains("z", (await ExportAsync(id, "end")).Keys);
    }

    [SkippableFact]
    public async Task TwentyContainersAtOnce_AreAllRecorded()
    {
        Fx.Require(Runtime);
        var ids = Enumerable.Range(0, 20).Select(i => NewId("fr", Runtime, "p" + i)).ToArray();
        var sw = Stopwatch.StartNew();
        var runs = ids.Select((id, i) => Ctr(TimeSpan.FromSeconds(120), "run", "--rm", "--runtime", Runtime, Image, id, "sh", "-c",
            $"mkdir /out; echo {i} > /out/n; dd if=/dev/zero of=/out/blob bs=64k count=4 2>/dev/null; sleep 0.5; echo done >> /out/n; exit {i % 7}")).ToArray();
        var results = await Task.WhenAll(runs);
        output.WriteLine($"20 containers under {Runtime}: {sw.Elapsed.TotalSeconds:F2} s");
        for (var i = 0; i < ids.Length; i++) AssertExit(results[i], i % 7);
        for (var i = 0; i < ids.Length; i++)
        {
            await WaitForExitRecordedAsync(ids[i], i % 7);
            var show = await _fx.Dk("show", ids[i], "/out/n", "--at", "end");
            AssertExit(show, 0);
            Assert.Equal($"{i}\ndone\n", show.Stdout);
        }
    }

    [SkippableFact]
    public async Task RecordFalseAnnotation_NothingIsRecorded()
    {
        Fx.Require(Runtime);
        var id = NewId("fr", Runtime, "norec");
        AssertExit(await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--annotation", "io.diffkeeper/record=false", "--runtime", Runtime, Image, id,
            "sh", "-c", "echo secret > /s; exit 0"), 0);
        // A recorded container of the same run proves the store is being written (so "absent" means "not recorded").
        var witness = NewId("fr", Runtime, "witness");
        AssertExit(await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--runtime", Runtime, Image, witness, "true"), 0);
        await WaitForExitRecordedAsync(witness, 0);
        var ls = await _fx.Dk("ls", "--json");
        AssertExit(ls, 0);
        Assert.DoesNotContain($"\"container_id\":\"{id}\"", ls.Stdout);
        var spool = Path.Combine(_fx.StoreDir, "spool", PrivateContainerd.Namespace);
        Assert.True(!Directory.Exists(spool) || Directory.GetDirectories(spool, id + "-*").Length == 0, "a spool entry for a container that asked not to be recorded");
    }

    [SkippableFact]
    public async Task NotAnOverlay_TheContainerRuns_AndTheRecordingSaysWhyItHoldsNoChanges()
    {
        Fx.Require(Runtime);
        var id = NewId("fr", Runtime, "rootfs");
        var rootfs = Path.Combine(Fx.Root, "plain-rootfs-" + id);
        Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
        File.Copy(BusyboxOciImage.BusyboxPath, Path.Combine(rootfs, "bin", "busybox"));
        foreach (var d in new[] { "proc", "sys", "dev", "tmp" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
        try
        {
            AssertExit(await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--rootfs", "--runtime", Runtime, rootfs, id,
                "/bin/busybox", "sh", "-c", "/bin/busybox echo hi > /tmp/hi; exit 4"), 4);
            Assert.Equal("hi\n", File.ReadAllText(Path.Combine(rootfs, "tmp", "hi")));
            await WaitForExitRecordedAsync(id, 4);
            var timeline = await TimelineAsync(id);
            Assert.True(timeline.Any(r => r.Kind == "gap" && r.Detail.Contains("overlay", StringComparison.OrdinalIgnoreCase)),
                "the recording does not say why it holds no changes:\n" + string.Join("\n", timeline.Select(r => r.Line)));
        }
        finally { Directory.Delete(rootfs, recursive: true); }
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    /// <summary>The overlay upperdir of a running container, from the rootfs mount in /proc/self/mountinfo.</summary>
    private string UpperDirOf(string id)
    {
        var rootfs = Path.Combine(Containerd.BundleDir(id), "rootfs");
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var f = line.Split(' ');
            if (f.Length < 5 || f[4] != rootfs) continue;
            var opts = line[(line.IndexOf(" - ", StringComparison.Ordinal) + 3)..].Split(' ').Last();
            foreach (var o in opts.Split(','))
                if (o.StartsWith("upperdir=", StringComparison.Ordinal)) return o["upperdir=".Length..];
        }
        throw new Xunit.Sdk.XunitException($"no overlay mount with an upperdir at {rootfs}");
    }

    /// <summary>path → canonical JSON of the entry (tree_manifest.py), overlay bookkeeping xattrs left out except
    /// the opaque mark (overlay's own origin/impure marks are not part of what the container sees).</summary>
    private async Task<Dictionary<string, string>> ManifestAsync(string dir)
    {
        var r = await ExternalCommand.RunAsync("python3", new[] { _fx.ManifestScript, dir }, TimeSpan.FromSeconds(60));
        AssertExit(r, 0);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(r.Stdout);
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var fields = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in entry.Value.EnumerateObject())
            {
                if (p.Name != "xattrs") { fields[p.Name] = p.Value.GetRawText(); continue; }
                var kept = p.Value.EnumerateObject()
                    .Where(x => !x.Name.StartsWith("trusted.overlay.", StringComparison.Ordinal) || x.Name == "trusted.overlay.opaque")
                    .Select(x => $"{x.Name}={x.Value.GetString()}");
                fields["xattrs"] = string.Join(",", kept);
            }
            result[entry.Name] = string.Join(" ", fields.Select(kv => $"{kv.Key}:{kv.Value}"));
        }
        return result;
    }

    private static string? Compare(Dictionary<string, string> expected, Dictionary<string, string> actual)
    {
        var problems = new List<string>();
        foreach (var (path, e) in expected.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            if (!actual.TryGetValue(path, out var a)) problems.Add($"missing {path} ({e})");
            else if (a != e) problems.Add($"{path}:\n      expected {e}\n      exported {a}");
        }
        foreach (var path in actual.Keys.Except(expected.Keys).Order(StringComparer.Ordinal)) problems.Add($"extra {path} ({actual[path]})");
        return problems.Count == 0 ? null : "\n    " + string.Join("\n    ", problems.Take(20));
    }

    private async Task<Dictionary<string, string>> ExportAsync(string rec, string at)
    {
        var dir = Path.Combine(Fx.Root, "export-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            AssertExit(await _fx.Dk("export", rec, "--at", at, "--out", dir), 0);
            return await ManifestAsync(dir);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    private sealed record Row(string Kind, string Path, string Comm, DateTime Time, string Detail, string Line);

    private async Task<List<Row>> TimelineAsync(string rec)
    {
        var r = await _fx.Dk("timeline", rec, "--json");
        AssertExit(r, 0);
        var rows = new List<Row>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            var o = doc.RootElement;
            string S(string name) => o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
            rows.Add(new Row(S("kind"), S("path").TrimStart('/'), S("comm"),
                DateTime.Parse(S("time"), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal), S("detail"), line));
        }
        return rows;
    }

    /// <summary>Waits until `ls` shows the container's recording with its exit status (the exit state is ingested in the background).</summary>
    private async Task<string> WaitForExitRecordedAsync(string containerId, int status)
    {
        var deadline = DateTime.UtcNow + Patience;
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            var r = await _fx.Dk("ls", "--json");
            last = r.ToString();
            foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var doc = JsonDocument.Parse(line);
                var o = doc.RootElement;
                if (o.GetProperty("container_id").ValueKind == JsonValueKind.String && o.GetProperty("container_id").GetString() == containerId &&
                    o.GetProperty("exit_status").ValueKind == JsonValueKind.Number && o.GetProperty("exit_status").GetInt32() == status)
                    return line;
            }
            await Task.Delay(200);
        }
        throw new Xunit.Sdk.XunitException($"no recording of {containerId} with exit status {status} after {Patience}:\n{last}\n{_fx.DaemonOutput}");
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string message)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException(message);
            await Task.Delay(50);
        }
    }
}
