using System.Diagnostics;
using System.Globalization;

namespace DiffKeeper.Record.Tests;

/// <summary>`diffkeeper record -- CMD` end to end: real cgroups, real eBPF, the real daemon, the real CLI.</summary>
public sealed class RecordTests
{
    // One step every ~300 ms; after each, /bin/date writes a mark (ns) into the unwatched directory: the moment at
    // which the step's state must be what `export --at` returns. Steps by busybox (the shell's own redirections) and
    // by other programs (coreutils mv, rm, truncate).
    private const string Script = """
        m() { /bin/date +%s%N >> u/marks; }
        echo one > w1/a; m; sleep 0.3
        echo two >> w1/a; echo secret > u/x; m; sleep 0.3
        /bin/mv w1/a w2/a2; m; sleep 0.3
        echo keep > w2/k; echo tmp > w1/t; mkdir w1/d; echo u2 > u/y; m; sleep 0.3
        /bin/rm w1/t; m; sleep 0.3
        /usr/bin/truncate -s 2 w2/a2; m; sleep 0.3
        exit 3
        """;

    private static readonly string[][] Expected =
    [
        ["d w1", "d w2", "f w1/a one\n"],
        ["d w1", "d w2", "f w1/a one\ntwo\n"],
        ["d w1", "d w2", "f w2/a2 one\ntwo\n"],
        ["d w1", "d w2", "f w2/a2 one\ntwo\n", "f w2/k keep\n", "f w1/t tmp\n", "d w1/d"],
        ["d w1", "d w2", "f w2/a2 one\ntwo\n", "f w2/k keep\n", "d w1/d"],
        ["d w1", "d w2", "f w2/a2 on", "f w2/k keep\n", "d w1/d"],
    ];

    [SkippableFact]
    public void AScriptsStepsAreRecordedUnderTwoWatchedDirectoriesAndItsExitStatusPropagates()
    {
        using var h = new RecordHarness();
        var work = h.Sub("work");
        foreach (var d in new[] { "w1", "w2", "u" }) Directory.CreateDirectory(Path.Combine(work, d));
        File.WriteAllText(Path.Combine(work, "u", "before"), "unwatched from the start\n");
        File.WriteAllText(Path.Combine(h.Dir.Path, "script.sh"), Script);

        var (code, _, err) = h.Run(work, "--dir", "w1", "--dir", Path.Combine(work, "w2"), "--name", "steps", "--", "busybox", "sh", Path.Combine(h.Dir.Path, "script.sh"));
        Assert.True(code == 3, $"exit status {code}, expected 3; stderr: {err}");
        h.AssertNoLeftovers();

        var rec = h.RecordingId("steps");
        var ls = h.Cli.Recordings().Single(r => r.GetProperty("name").GetString() == "steps");
        Assert.Equal(3, ls.GetProperty("exit_status").GetInt32());

        var marks = File.ReadAllLines(Path.Combine(work, "u", "marks")).Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(Expected.Length, marks.Length);
        for (int i = 0; i < marks.Length; i++)
        {
            var got = h.ExportAt(rec, Cli.FormatTime(marks[i]));
            Assert.True(got.SetEquals(Expected[i]), $"step {i + 1}: export --at {Cli.FormatTime(marks[i])} is\n  {string.Join("\n  ", got)}\nexpected\n  {string.Join("\n  ", Expected[i])}");
        }
        // The state at the end is what the script left on disk, and the export of `end` equals it.
        var disk = RecordHarness.Tree(work);
        var watchedOnDisk = disk.Where(e => !e.Split(' ')[1].StartsWith('u')).ToHashSet();
        Assert.True(watchedOnDisk.SetEquals(Expected[^1]), "on disk: " + string.Join(" | ", disk));
        Assert.True(h.ExportAt(rec, "end").SetEquals(Expected[^1]));
        Assert.Contains("f u/x secret\n", disk);

        // Who did what (timeline paths are relative to the recording's root): the shell's writes by busybox, the others by their programs; the exit event says 3.
        var tl = h.Cli.Timeline(rec);
        void Has(string kind, string path, string comm) =>
            Assert.True(tl.Any(r => r.Kind == kind && r.Path == path && r.Comm == comm && r.Pid > 0), $"no {kind} {path} by {comm} in\n{string.Join("\n", tl)}");
        Has("create", "w1/a", "busybox");
        Has("write", "w1/a", "busybox");
        Has("rename", "w1/a", "mv");
        Has("create", "w2/k", "busybox");
        Has("delete", "w1/t", "rm");
        Has("truncate", "w2/a2", "truncate");
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "3");
        Assert.Contains(tl, r => r.Kind == "start" && r.Pid > 0);
        // Each step's change is timed within the step: after the previous mark, before this one.
        var create = tl.First(r => r.Kind == "create" && r.Path == "w1/a");
        Assert.True(create.Time <= marks[0], $"create at {create.Time}, mark {marks[0]}");
        var trunc = tl.First(r => r.Kind == "truncate");
        Assert.True(trunc.Time > marks[4] && trunc.Time <= marks[5], $"truncate at {trunc.Time}, marks {marks[4]}..{marks[5]}");

        // The unwatched directory appears nowhere: not in the timeline, not in any state, not findable.
        Assert.DoesNotContain(tl, r => r.Path.StartsWith('u') || (r.Detail ?? "").Contains("secret", StringComparison.Ordinal));
        Assert.NotEqual(0, h.Cli.Run("show", rec, "/u/x").Code);
        var versions = h.Cli.Json("timeline", rec, "--path", "/u/**");
        Assert.Empty(versions);
    }

    [SkippableFact]
    public void AFileRewrittenThroughASharedMappingIsExactAtExit()
    {
        // The overhead benchmark's (d) in small: three passes over a mapped file, page by page, ~300 ms apart, never
        // msync'ed. The first pass faults every page (events; most take the kernel's coalesced path, docs/bpf.md)
        // and is recorded live. The later passes store into pages that are still dirty: the kernel raises nothing and
        // does not even move mtime (it does so at a page's first write fault only), so they are invisible live (a
        // limit of the capture, docs/record.md). The state at exit must still be the last pass, exactly: the exit
        // rescan re-reads every file the command wrote.
        Integration.Require(Integration.HasTool("python3"), "needs python3");
        using var h = new RecordHarness();
        var work = h.Sub("mm");
        const int size = 64 * 4096;
        File.WriteAllText(Path.Combine(h.Dir.Path, "mm.py"), $$"""
            import mmap, os, time
            fd = os.open("m.dat", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(fd, {{size}})
            m = mmap.mmap(fd, {{size}})
            marks = open("../marks", "w")
            for c in b"abc":
                for off in range(0, {{size}}, 4096):
                    m[off:off + 4096] = bytes([c]) * 4096
                time.sleep(0.3)
                marks.write("%d\n" % time.time_ns()); marks.flush()
                time.sleep(0.05)
            m.close(); os.close(fd)
            """);
        var (code, _, err) = h.Run(work, "--dir", ".", "--name", "mm", "--", "python3", Path.Combine(h.Dir.Path, "mm.py"));
        Assert.True(code == 0, $"exit status {code}; stderr: {err}");

        var rec = h.RecordingId("mm");
        var marks = File.ReadAllLines(Path.Combine(h.Dir.Path, "marks")).Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, marks.Length);
        static string Short(IEnumerable<string> set) => string.Join(" | ", set.Select(g => g.Length > 40 ? g[..40] + "…" : g));
        var first = h.ExportAt(rec, Cli.FormatTime(marks[0]));
        Assert.True(first.SetEquals(["f m.dat " + new string('a', size)]), $"pass 1 (page faults) is recorded live: {Short(first)}");
        var end = h.ExportAt(rec, "end");
        Assert.True(end.SetEquals(["f m.dat " + new string('c', size)]), $"the state at exit is the last pass: {Short(end)}");
        Assert.Equal(new string('c', size), File.ReadAllText(Path.Combine(work, "m.dat")));
        var tl = h.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind is "create" or "write" && r.Path == "m.dat" && r.Comm == "python3" && r.Pid > 0);
    }

    [SkippableFact]
    public void ALargeFileIsNotReReadInEveryFrameWhileItGrowsAndIsExactOnceItPausesAndAtExit()
    {
        // A 5 MiB file that then grows by 256 KiB every 100 ms for 1.5 s (one change per frame), pauses, and gets
        // one last append before the command exits. Read in every frame, it would have ~16 versions (each a read of
        // the whole file so far); a growing file of 4 MiB or more waits instead (docs/record.md, "Resolution"):
        // one version after 1 s of growth, one once it paused, one at exit. Its write events still come every frame.
        Integration.Require(Integration.HasTool("python3"), "needs python3");
        using var h = new RecordHarness();
        var work = h.Sub("grow");
        File.WriteAllText(Path.Combine(h.Dir.Path, "grow.py"), """
            import os, time
            f = os.open("big.dat", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(f, b"A" * (5 << 20))
            for i in range(15):
                time.sleep(0.1)
                os.write(f, bytes([66 + i]) * (256 << 10))
            time.sleep(0.6)
            open("../mark", "w").write("%d\n" % time.time_ns())
            time.sleep(0.2)
            os.write(f, b"z" * 4096)
            os.close(f)
            """);
        var summary = Path.Combine(h.Dir.Path, "summary.json");
        var (code, _, err) = h.Run(work, "--dir", ".", "--name", "grow", "--summary", summary, "--", "python3", Path.Combine(h.Dir.Path, "grow.py"));
        Assert.True(code == 0, $"exit status {code}; stderr: {err}");

        var paused = new byte[(5 << 20) + 15 * (256 << 10)];
        Array.Fill(paused, (byte)'A', 0, 5 << 20);
        for (int i = 0; i < 15; i++) Array.Fill(paused, (byte)(66 + i), (5 << 20) + i * (256 << 10), 256 << 10);
        byte[] atExit = [.. paused, .. Enumerable.Repeat((byte)'z', 4096)];
        Assert.Equal(atExit, File.ReadAllBytes(Path.Combine(work, "big.dat")));

        AssertBusyFileRecordedSparsely(h, "grow", summary, paused, atExit);
    }

    /// <summary>The busy-large-file checks (docs/record.md, "Resolution") for a command that wrote big.dat for 1.5 s,
    /// wrote a timestamp to `mark` after pausing, and changed it once more before exiting: big.dat at the mark is
    /// <paramref name="paused"/> and at the end <paramref name="atExit"/>, byte for byte; the recording holds a handful
    /// of versions (the baseline's root and big.dat's), not one a frame; its change events still came every frame.</summary>
    private static void AssertBusyFileRecordedSparsely(RecordHarness h, string name, string summary, byte[] paused, byte[] atExit)
    {
        var rec = h.RecordingId(name);
        var mark = long.Parse(File.ReadAllText(Path.Combine(h.Dir.Path, "mark")).Trim(), CultureInfo.InvariantCulture);
        byte[] Exported(string at)
        {
            var outDir = Path.Combine(h.Dir.Path, "export-" + Guid.NewGuid().ToString("N")[..8]);
            h.Cli.Export(rec, at, outDir);
            try { return File.ReadAllBytes(Path.Combine(outDir, "big.dat")); }
            finally { Directory.Delete(outDir, true); }
        }
        var atMark = Exported(Cli.FormatTime(mark));
        Assert.True(atMark.AsSpan().SequenceEqual(paused),
            $"the state once it paused is the file then ({atMark.Length} bytes recorded, {paused.Length} written; first byte {(atMark.Length > 0 ? atMark[0] : -1)}, expected {paused[0]})");
        Assert.Equal(atExit, Exported("end"));

        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(summary));
        long versions = doc.RootElement.GetProperty("versions").GetInt64();
        Assert.True(versions <= 7, $"{versions} versions: the busy file was read in (nearly) every frame");
        var writes = h.Cli.Timeline(rec).Count(r => r.Kind is "create" or "write" && r.Path == "big.dat" && r.Comm == "python3");
        Assert.True(writes >= 10, $"{writes} change events of big.dat: its events must still come every frame while it changes");
    }

    [SkippableFact]
    public void ALargeFileRewrittenInPlaceIsNotReReadInEveryFrameAndIsExactOnceItPausesAndAtExit()
    {
        // A 5 MiB file rewritten in place (pwrite at offset 0, same size) every 100 ms for 1.5 s, then a pause, then
        // one last 4 KiB rewrite before the command exits. Read in every frame, it would have ~16 versions (each a
        // read of all 5 MiB); a busy large file waits instead (docs/record.md, "Resolution"): one version after 1 s
        // of changes, one once it paused, one at exit. Its change events still come every frame.
        Integration.Require(Integration.HasTool("python3"), "needs python3");
        using var h = new RecordHarness();
        var work = h.Sub("busy");
        const int size = 5 << 20;
        File.WriteAllText(Path.Combine(h.Dir.Path, "busy.py"), $$"""
            import os, time
            f = os.open("big.dat", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(f, b"A" * {{size}})
            for i in range(15):
                time.sleep(0.1)
                os.pwrite(f, bytes([66 + i]) * {{size}}, 0)
            time.sleep(0.6)
            open("../mark", "w").write("%d\n" % time.time_ns())
            time.sleep(0.2)
            os.pwrite(f, b"z" * 4096, 0)
            os.close(f)
            """);
        var summary = Path.Combine(h.Dir.Path, "summary.json");
        var (code, _, err) = h.Run(work, "--dir", ".", "--name", "busy", "--summary", summary, "--", "python3", Path.Combine(h.Dir.Path, "busy.py"));
        Assert.True(code == 0, $"exit status {code}; stderr: {err}");

        var paused = new byte[size];
        Array.Fill(paused, (byte)(66 + 14));
        byte[] atExit = [.. Enumerable.Repeat((byte)'z', 4096), .. paused.AsSpan(4096)];
        Assert.Equal(atExit, File.ReadAllBytes(Path.Combine(work, "big.dat")));

        AssertBusyFileRecordedSparsely(h, "busy", summary, paused, atExit);
    }

    [SkippableFact]
    public void ACommandKilledBySignalExitsLikeAShellAndSignalsArePassedOn()
    {
        using var h = new RecordHarness();
        var w = h.Sub("w");
        // Killed by a signal: 128+9, like a shell; the recording says so.
        var (code, _, err) = h.Run(w, "--name", "killed", "--", "busybox", "sh", "-c", "echo x > f; kill -KILL $$");
        Assert.True(code == 137, $"exit {code}: {err}");
        var rec = h.RecordingId("killed");
        var tl = h.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "137");
        Assert.Contains(tl, r => r.Kind == "signal" && (r.Detail ?? "").Contains("signal 9", StringComparison.Ordinal));
        Assert.Contains("f f x\n", h.ExportAt(rec, "end"));

        // SIGTERM to `record` reaches the command, which handles it its own way (here: exit 7 after a last write).
        using var p = h.Start(w, "--name", "trapped", "--", "busybox", "sh", "-c",
            "trap 'echo got > got; exit 7' TERM; echo ready > ready; while :; do sleep 0.05; done");
        var ready = Path.Combine(w, "ready");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(ready) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.True(File.Exists(ready), "the command never started");
        Thread.Sleep(200);
        Assert.Equal(0, kill(p.Id, 15));
        var (code2, _, err2) = RecordHarness.Finish(p);
        Assert.True(code2 == 7, $"exit {code2}: {err2}");
        Assert.Equal("got\n", File.ReadAllText(Path.Combine(w, "got")));
        var rec2 = h.RecordingId("trapped");
        Assert.Contains("f got got\n", h.ExportAt(rec2, "end"));
        Assert.Contains(h.Cli.Timeline(rec2), r => r.Kind == "exit" && r.Detail == "7");
        h.AssertNoLeftovers();
    }

    [SkippableFact]
    public void ASignalWhileRecordSetsUpIsPassedOnOnceTheCommandRunsAndNothingIsLeftBehind()
    {
        // SIGTERM to `record` after it made its cgroup and before CMD runs (the private daemon reads the baseline,
        // here 64 MiB). Before session 9 the signal killed `record` there: its cgroup and its private daemon stayed.
        using var h = new RecordHarness();
        var w = h.Sub("w");
        using (var f = File.Create(Path.Combine(w, "big.dat")))
        {
            var buf = new byte[1 << 20];
            var rng = new Random(9);
            for (int i = 0; i < 64; i++) { rng.NextBytes(buf); f.Write(buf); }
        }
        using var p = h.Start(w, "--name", "early", "--", "busybox", "sh", "-c", "echo ran > ran; sleep 10");
        string? cg = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((cg = Directory.EnumerateDirectories(h.Cgroup, "diffkeeper-record-*").FirstOrDefault()) == null && !p.HasExited && DateTime.UtcNow < deadline)
            Thread.Sleep(2);
        Assert.True(cg != null, "record made no cgroup");
        Thread.Sleep(20);
        bool inSetUp = File.ReadAllText(Path.Combine(cg!, "cgroup.procs")).Trim().Length == 0 && !File.Exists(Path.Combine(w, "ran"));
        Assert.Equal(0, kill(p.Id, 15));
        Assert.True(inSetUp, "the command already ran: the signal did not come during the set-up");
        var (code, _, err) = RecordHarness.Finish(p);
        Assert.True(code == 143, $"exit {code}, expected 143 (the command killed by SIGTERM): {err}");
        h.AssertNoLeftovers();
        var tl = h.Cli.Timeline(h.RecordingId("early"));
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "143");
    }

    [SkippableFact]
    public void ADaemonisedChildThatOutlivesTheCommandEndsTheRecordingWithTheCommand()
    {
        using var h = new RecordHarness();
        var w = h.Sub("w");
        var sw = Stopwatch.StartNew();
        var (code, _, err) = h.Run(w, "--name", "forked", "--", "busybox", "sh", "-c",
            "setsid busybox sh -c 'sleep 1.5; echo late > late' </dev/null >/dev/null 2>&1 & echo early > early");
        sw.Stop();
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.4) || !File.Exists(Path.Combine(w, "late")), "record waited for the daemonised child");
        Assert.Contains("still run", err);
        var rec = h.RecordingId("forked");
        var tl = h.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "gap" && (r.Detail ?? "").Contains("the recording ends with the command", StringComparison.Ordinal));
        // The child goes on after the recording ended (moved out of the removed cgroup), and is not recorded.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!File.Exists(Path.Combine(w, "late")) && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.Equal("late\n", File.ReadAllText(Path.Combine(w, "late")));
        var end = h.ExportAt(rec, "end");
        Assert.Contains("f early early\n", end);
        Assert.DoesNotContain(end, e => e.Contains("late", StringComparison.Ordinal));
        Assert.DoesNotContain(h.Cli.Timeline(rec), r => r.Path == "late");
        h.AssertNoLeftovers();
    }

    [SkippableFact]
    public void SurvivorsThatForkWhileRecordMovesThemOutAllLeaveAndRecordEndsCleanly()
    {
        // cgroup v2 moves one process per write to cgroup.procs: `record` reads the list of survivors and moves them out
        // one by one, while a survivor not yet moved can fork, and its child starts in the cgroup. Here 300 idle
        // survivors come first in the list (moving them takes tens of ms), then one that forks a 2 s child every ~8 ms
        // until `stop` exists. Before session 9, such a child stayed in the cgroup: removing it failed (EBUSY for 1 s),
        // and `record` exited 1 instead of the command's 0, left its cgroup behind and its private daemon running
        // (3 runs of 3).
        using var h = new RecordHarness();
        var w = h.Sub("w");
        var (code, _, err) = h.Run(w, "--name", "forking", "--", "busybox", "sh", "-c", """
            i=0; while [ $i -lt 300 ]; do busybox sleep 30 </dev/null >/dev/null 2>&1 & i=$((i+1)); done
            busybox sh -c 'n=0; while [ ! -e stop ] && [ $n -lt 2500 ]; do busybox sleep 2 & busybox usleep 8000; n=$((n+1)); done' </dev/null >/dev/null 2>&1 &
            busybox sleep 0.2
            """);
        File.WriteAllText(Path.Combine(w, "stop"), "");
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.Contains("still run", err);
        Assert.DoesNotContain("could not be removed", err);
        h.AssertNoLeftovers(); // the cgroup removed, the private daemon stopped
        // The survivors went on, outside: in the cgroup `record` itself ran in (the harness's).
        Assert.True(File.ReadAllLines(Path.Combine(h.Cgroup, "cgroup.procs")).Length >= 300, "the survivors were not moved to record's own cgroup");
        Assert.Contains(h.Cli.Timeline(h.RecordingId("forking")), r => r.Kind == "exit" && r.Detail == "0");
    }

    [SkippableFact]
    public void EightRecordRunsInParallelShareOnePrivateDaemon()
    {
        using var h = new RecordHarness();
        const int n = 8;
        var dirs = Enumerable.Range(1, n).Select(i => h.Sub("job" + i)).ToArray();
        var procs = dirs.Select((d, i) => h.Start(d, "--keep", "always", "--name", "job" + (i + 1), "--", "busybox", "sh", "-c",
            $"echo {i + 1} > out; sleep 0.3; echo {i + 1} >> out; exit {i + 1}")).ToArray();
        var results = procs.Select(p => RecordHarness.Finish(p)).ToArray();
        for (int i = 0; i < n; i++)
        {
            Assert.True(results[i].Code == i + 1, $"job{i + 1}: exit {results[i].Code}: {results[i].Err}");
            procs[i].Dispose();
        }
        h.AssertNoLeftovers(); // the shared daemon stopped with the last run, every cgroup removed
        for (int i = 0; i < n; i++)
        {
            var rec = h.RecordingId("job" + (i + 1));
            var end = h.ExportAt(rec, "end");
            Assert.Equal(new SortedSet<string>(StringComparer.Ordinal) { $"f out {i + 1}\n{i + 1}\n" }, end);
            var tl = h.Cli.Timeline(rec);
            Assert.Contains(tl, r => r.Kind == "create" && r.Path == "out" && r.Comm == "busybox");
            Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == (i + 1).ToString(CultureInfo.InvariantCulture));
        }
        // One daemon served them all: its log shows the 8 sessions.
        var log = Directory.EnumerateFiles("/run/diffkeeper-record", "daemon.log", SearchOption.AllDirectories)
            .FirstOrDefault(f => File.ReadAllText(f).Contains(h.Store, StringComparison.Ordinal));
        Assert.NotNull(log);
        var text = File.ReadAllText(log!);
        Assert.Equal(n, text.Split('\n').Count(l => l.Contains(": recording ", StringComparison.Ordinal) && l.Contains("record diffkeeper-record-", StringComparison.Ordinal)));
    }

    [SkippableFact]
    public void KeepFailureDropsTheRecordingOfASuccessfulCommandAndBadInputIsAUsageError()
    {
        using var h = new RecordHarness();
        var w = h.Sub("w");
        var (code, _, err) = h.Run(w, "--keep", "failure", "--name", "ok", "--", "busybox", "sh", "-c", "echo fine > f");
        Assert.True(code == 0, err);
        Assert.Contains("dropped", err);
        Assert.DoesNotContain(h.Cli.Recordings(), r => r.GetProperty("name").GetString() == "ok");
        Assert.Equal("fine\n", File.ReadAllText(Path.Combine(w, "f"))); // the files stay

        var (c2, _, e2) = h.Run(w, "--keep", "sometimes", "--", "true");
        Assert.Equal(2, c2);
        Assert.Contains("--keep", e2);
        var (c3, _, e3) = h.Run(w, "--dir", Path.Combine(w, "missing"), "--", "true");
        Assert.Equal(2, c3);
        Assert.Contains("no such directory", e3);
        var (c4, _, e4) = h.Run(w, "--name", "nf", "--", "no-such-command-dk");
        Assert.Equal(127, c4);
        Assert.Contains("command not found", e4);
    }

    [SkippableFact]
    public void ARecordKilledWithoutAWordHasItsRecordingEndedByItsDaemonWhichThenStops()
    {
        // A CI job's timeout kills the job's processes with SIGKILL: `record` can neither end its recording nor stop
        // its private daemon. Before session 10 the recording stayed live and the daemon ran on, for ever.
        using var h = new RecordHarness();
        var w = h.Sub("w");

        // 1. `record` and the command killed together (the job's process group; the daemon has a session of its own).
        using (var p = h.StartInOwnProcessGroup(w, "--name", "timed-out", "--", "busybox", "sh", "-c", "echo one > a; echo ready > ready; sleep 1000"))
        {
            WaitForFile(Path.Combine(w, "ready"), p);
            Thread.Sleep(300); // a few frames: `a` recorded live
            int daemon = int.Parse(File.ReadAllText(Path.Combine(h.PrivateDir, "daemon.pid")), CultureInfo.InvariantCulture);
            Assert.Equal(0, kill(-p.Id, 9));
            p.WaitForExit();
            WaitUntilStopped(daemon);
        }
        Assert.False(File.Exists(Path.Combine(h.PrivateDir, "daemon.pid")), "the daemon's pid file stayed");
        h.AssertNoLeftovers(); // the daemon gone, the empty cgroup removed (by the daemon)
        var rec = h.RecordingId("timed-out");
        var tl = h.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "gap" && (r.Detail ?? "").Contains("went away before the command ended", StringComparison.Ordinal)
                                 && (r.Detail ?? "").Contains("exit status unknown", StringComparison.Ordinal));
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "unknown");
        Assert.Contains(tl, r => r.Kind == "create" && r.Path == "a" && r.Comm == "busybox");
        Assert.Equal(new SortedSet<string>(StringComparer.Ordinal) { "f a one\n", "f ready ready\n" }, h.ExportAt(rec, "end"));
        var row = h.Cli.Recordings().Single(r => r.GetProperty("name").GetString() == "timed-out");
        Assert.Equal(System.Text.Json.JsonValueKind.Null, row.GetProperty("exit_status").ValueKind);

        // 2. `record` alone killed: the command goes on in its cgroup, which the daemon leaves to it; the recording
        // ends anyway, naming it. The next `record` finds no daemon and starts one.
        int cmd;
        using (var p = h.Start(w, "--name", "orphaned", "--", "busybox", "sh", "-c", "echo two > b; echo $$ > cmd.pid; while :; do sleep 0.05; done"))
        {
            WaitForFile(Path.Combine(w, "cmd.pid"), p);
            Thread.Sleep(300);
            cmd = int.Parse(File.ReadAllText(Path.Combine(w, "cmd.pid")), CultureInfo.InvariantCulture);
            int daemon = int.Parse(File.ReadAllText(Path.Combine(h.PrivateDir, "daemon.pid")), CultureInfo.InvariantCulture);
            Assert.Equal(0, kill(p.Id, 9));
            p.WaitForExit();
            WaitUntilStopped(daemon);
        }
        Assert.True(RecordHarness.Runs(cmd), "the command did not outlive its `record`");
        var left = h.Leftovers();
        Assert.True(left.Count == 1 && left[0].StartsWith("cgroup ", StringComparison.Ordinal) && left[0].Contains($"{cmd} ", StringComparison.Ordinal),
            "expected only the command's cgroup, with the command in it:\n" + string.Join("\n", left));
        var gap = h.Cli.Timeline(h.RecordingId("orphaned")).Single(r => r.Kind == "gap" && (r.Detail ?? "").Contains("went away", StringComparison.Ordinal));
        Assert.Contains($"{cmd} busybox", gap.Detail);
        Assert.Contains("f b two\n", h.ExportAt(h.RecordingId("orphaned"), "end"));
        Assert.Equal(0, kill(cmd, 9));
        var (code, _, err) = h.Run(w, "--name", "after", "--", "busybox", "sh", "-c", "exit 4");
        Assert.True(code == 4, $"exit {code}: {err}");
    }

    [SkippableFact]
    public void ADaemonThatStopsWhileTheCommandRunsEndsItsRecordingAndTheCommandGoesOn()
    {
        // The daemon stops under a live `record` (SIGTERM: the node's daemon restarted, a private one killed): the
        // recording is ended then, not left open; `record` cannot finish it, says so, and exits with CMD's status.
        using var h = new RecordHarness();
        var w = h.Sub("w");
        using var p = h.Start(w, "--name", "daemon-stopped", "--", "busybox", "sh", "-c",
            "echo one > a; echo ready > ready; while [ ! -e go ]; do sleep 0.05; done; echo two > b; exit 5");
        WaitForFile(Path.Combine(w, "ready"), p);
        Thread.Sleep(300);
        int daemon = int.Parse(File.ReadAllText(Path.Combine(h.PrivateDir, "daemon.pid")), CultureInfo.InvariantCulture);
        Assert.Equal(0, kill(daemon, 15));
        WaitUntilStopped(daemon);
        File.WriteAllText(Path.Combine(w, "go"), "");
        var (code, _, err) = RecordHarness.Finish(p);
        Assert.True(code == 5, $"exit {code}: {err}");
        Assert.Contains("could not be finished", err);
        Assert.Equal("two\n", File.ReadAllText(Path.Combine(w, "b")));
        h.AssertNoLeftovers();
        var rec = h.RecordingId("daemon-stopped");
        var tl = h.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "gap" && (r.Detail ?? "").Contains("diffkeeperd stopped while diffkeeper record (pid " + p.Id + ")", StringComparison.Ordinal));
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "unknown");
        var end = h.ExportAt(rec, "end");
        Assert.Contains("f a one\n", end);
        Assert.DoesNotContain(end, e => e.StartsWith("f b ", StringComparison.Ordinal)); // written after the recording ended
    }

    private static void WaitForFile(string path, Process p)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(File.Exists(path) && new FileInfo(path).Length > 0) && !p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.True(File.Exists(path), $"{Path.GetFileName(path)} never came: {(p.HasExited ? p.StandardError.ReadToEnd() : "record still runs")}");
    }

    private static void WaitUntilStopped(int daemon)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (RecordHarness.Runs(daemon) && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.False(RecordHarness.Runs(daemon), $"the private daemon (pid {daemon}) still runs 30 s after its last `record` was killed");
    }

    private static int kill(int pid, int sig) => Tmds.Linux.LibC.kill(pid, sig);
}
