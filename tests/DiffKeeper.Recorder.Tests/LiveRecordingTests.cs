namespace DiffKeeper.Recorder.Tests;

/// <summary>
/// A "container" (a shell in its own mount namespace writing through a real overlay) recorded live by the real
/// daemon and its eBPF capture: every step shows in the timeline with the process that made it, at the right time,
/// and `export --at` right after each step equals the upper directory as it was then.
/// </summary>
[Collection(DaemonCollection.Name)]
public sealed class LiveRecordingTests
{
    private const long FrameNs = 100_000_000;

    private sealed record Step(string Name, string Command, bool Background, string Path, string[] Kinds, string? Comm);

    [SkippableFact]
    public async Task Every_step_is_in_the_timeline_with_its_process_and_time_and_export_at_each_step_equals_the_upper_dir()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins, lower =>
        {
            File.WriteAllText(Path.Combine(lower, "img.txt"), "from the image\n");
            File.WriteAllText(Path.Combine(lower, "img2.txt"), "also from the image\n");
        });
        var status = await s.Daemon.StatusAsync();
        Integration.Require(status.Version.Length > 0, "status");
        var created = DateTime.UtcNow;
        var tr = await s.Daemon.TrackAsync(s.Info, created);
        Assert.True(tr.Recording, tr.Reason);
        Assert.Equal(Path.Combine(s.Store, "spool"), tr.SpoolDir);
        Integration.Require(tr.Reason == "", "live capture is not available: " + tr.Reason);
        var rec = tr.RecordingId.ToString("x16");
        await s.Daemon.LifecycleAsync(s.Info.Namespace, s.Info.Id, "start", DateTime.UtcNow, s.Shell.Pid);

        bool python = Integration.HasTool("python3");
        var steps = new List<Step>
        {
            new("create", "echo hello > a.txt", false, "a.txt", ["create"], "sh"),
            new("append", "echo more >> a.txt", false, "a.txt", ["write"], "sh"),
            new("mkdir", "mkdir d", true, "d", ["mkdir"], "mkdir"),
            new("copy", "cp a.txt d/b.txt", true, "d/b.txt", ["create"], "cp"),
            new("rename", "mv a.txt c.txt", true, "a.txt", ["rename"], "mv"),
            new("chmod", "chmod 600 c.txt", true, "c.txt", ["chmod"], "chmod"),
            new("delete own file", "rm d/b.txt", true, "d/b.txt", ["delete"], "rm"),
            new("edit image file", "echo edited >> img.txt", false, "img.txt", ["write"], "sh"),
            new("delete image file", "rm img2.txt", true, "img2.txt", ["delete"], "rm"),
            new("symlink", "ln -s c.txt link", true, "link", ["symlink"], "ln"),
            new("hard link", "ln c.txt hard", true, "hard", ["link"], "ln"),
            new("truncate", "truncate -s 3 c.txt", true, "c.txt", ["truncate", "write"], "truncate"),
            new("rmdir", "rmdir d", true, "d", ["rmdir"], "rmdir"),
            new("mkdir tree", "mkdir -p e/f && echo deep > e/f/g.txt", false, "e/f/g.txt", ["create"], "sh"),
            new("rename dir", "mv e e2", true, "e", ["rename"], "mv"),
            new("overwrite", "echo rewritten > c.txt", false, "c.txt", ["write"], "sh"),
        };
        if (python)
            steps.Add(new("mmap write", "python3 -c \"import mmap; f=open('c.txt','r+b'); m=mmap.mmap(f.fileno(),0); m[0:1]=b'R'; m.flush(); m.close()\"", true,
                "c.txt", ["write"], "python3"));

        var results = new List<(Step Step, long Before, long After, int Pid, List<string> Upper)>();
        foreach (var step in steps)
        {
            long before = Cli.NowNs();
            int pid;
            if (step.Background) { var (p, st) = s.Shell.Run(step.Command); Assert.Equal(0, st); pid = p; }
            else { var (_, st) = s.Shell.Step(step.Command); Assert.Equal(0, st); pid = s.Shell.Pid; }
            long after = Cli.NowNs();
            results.Add((step, before, after, pid, TreeListing.Of(s.Overlay.Upper)));
            Thread.Sleep(300);
        }
        Thread.Sleep(300); // the last step's frame and its re-check

        var timeline = s.Cli.Timeline(rec);
        var failures = new List<string>();
        foreach (var (step, before, after, pid, _) in results)
        {
            var match = timeline.Where(r => r.Path == step.Path && step.Kinds.Contains(r.Kind) && r.Time >= before - FrameNs && r.Time <= after + FrameNs).ToList();
            if (match.Count == 0) { failures.Add($"{step.Name}: no {string.Join('|', step.Kinds)} of /{step.Path} between {Cli.FormatTime(before)} and {Cli.FormatTime(after)}"); continue; }
            if (match.Any(r => r.Pid == pid && r.Comm == step.Comm)) continue;
            // One known limit of attribution at frame resolution (docs/recorder.md, "From inodes to paths"): when a
            // frame ends between mkdir's `e/f` and the shell's `e/f/g.txt`, and the shell makes the file before the
            // daemon lists the new `e/f`, the create names mkdir (the directory's maker), and the shell's own change
            // of the file follows in the next frame. Accepted in exactly that form, nothing else.
            var byMaker = match.FirstOrDefault(r => r.Kind == "create" && r.Comm == "mkdir");
            bool frameBoundary = step.Name == "mkdir tree" && byMaker != null &&
                timeline.Any(r => r.Path == step.Path && r.Pid == pid && r.Comm == step.Comm && r.Time > byMaker.Time && r.Time <= byMaker.Time + FrameNs);
            if (!frameBoundary) failures.Add($"{step.Name}: expected pid {pid} comm {step.Comm}, got {string.Join("; ", match)}");
        }
        if (!python) failures.Add("(python3 missing: the mmap step did not run)");
        // Renames name their target.
        if (!timeline.Any(r => r.Kind == "rename" && r.Path == "a.txt" && r.Detail != null && r.Detail.Contains("/c.txt"))) failures.Add("rename a.txt: no -> /c.txt");
        if (!timeline.Any(r => r.Kind == "rename" && r.Path == "e" && r.Detail != null && r.Detail.Contains("/e2"))) failures.Add("rename e: no -> /e2");

        foreach (var (step, _, after, _, upper) in results)
        {
            var outDir = Path.Combine(s.Dir.Path, "export-" + results.FindIndex(r => r.Step == step));
            s.Cli.Export(rec, Cli.FormatTime(after), outDir);
            var got = TreeListing.Of(outDir);
            if (!got.SequenceEqual(upper)) failures.Add($"export --at after \"{step.Name}\" differs from the upper dir:\n{TreeListing.Diff(upper, got)}");
        }
        Assert.True(failures.Count == (python ? 0 : 1) && (python || failures[0].StartsWith('(')),
            string.Join('\n', failures) + "\n--- timeline:\n" + string.Join('\n', timeline) + "\n--- daemon:\n" + s.Daemon.Log);

        // Exit: the shim freezes the upper tree into the spool and says Exited; the daemon ingests it in the background.
        int exit = s.Shell.Exit();
        Assert.Equal(3, exit);
        var exitedAt = DateTime.UtcNow;
        var finalUpper = TreeListing.Of(s.Overlay.Upper);
        var entry = SpoolEntry.Freeze(tr.SpoolDir, s.Overlay.Upper, s.Info, tr.RecordingId, created, exitedAt, exit);
        await s.Daemon.ExitedAsync(s.Info.Namespace, s.Info.Id, entry, exit, exitedAt);
        SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(30), () => s.Daemon.Log);
        var ls = s.Cli.Recordings().Single(r => r.GetProperty("id").GetString() == rec);
        Assert.Equal(3, ls.GetProperty("exit_status").GetInt32());
        var endDir = Path.Combine(s.Dir.Path, "export-end");
        s.Cli.Export(rec, "end", endDir);
        var end = TreeListing.Of(endDir);
        Assert.True(end.SequenceEqual(finalUpper), "exit state differs from the upper dir:\n" + TreeListing.Diff(finalUpper, end));
        var tl = s.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "create" && r.Detail != null && r.Detail.Contains("SECRET_TOKEN") && !r.Detail.Contains("="));
        Assert.Contains(tl, r => r.Kind == "start" && r.Pid == s.Shell.Pid);
        Assert.Contains(tl, r => r.Kind == "exit" && r.Detail == "3");
        Assert.DoesNotContain(tl, r => r.Kind == "gap");
    }
}

/// <summary>When the kernel's dirty set overflows, detail is lost: the recording says so and is made whole again.</summary>
[Collection(DaemonCollection.Name)]
public sealed class LostEventsTests
{
    [SkippableFact]
    public async Task Lost_kernel_events_give_a_gap_and_a_full_rescan_that_makes_the_state_whole()
    {
        var bins = Env.RequireDaemon();
        // A dirty set of 8 inodes: creating 150 files within one frame overflows it.
        await using var s = await Scenario.StartAsync(bins, configToml: "metrics_address = \"\"\n[limits]\ncapture_inodes = 8\n");
        var tr = await s.Daemon.TrackAsync(s.Info, DateTime.UtcNow);
        Integration.Require(tr.Reason == "", "live capture is not available: " + tr.Reason);
        var rec = tr.RecordingId.ToString("x16");
        s.Shell.Step("echo first > first.txt");
        Thread.Sleep(300);
        s.Shell.Step("rm first.txt; mkdir many; i=0; while [ $i -lt 150 ]; do echo $i > many/f$i; i=$((i+1)); done");
        Thread.Sleep(600);
        var upper = TreeListing.Of(s.Overlay.Upper);
        var tl = s.Cli.Timeline(rec);
        var all = string.Join('\n', tl.Take(40)) + "\n--- daemon:\n" + s.Daemon.Log;
        Assert.True(tl.Any(r => r.Kind == "gap" && r.Detail != null && r.Detail.StartsWith("capture lost ") && r.Detail.Contains("next full rescan at")), all);
        var outDir = Path.Combine(s.Dir.Path, "export-now");
        s.Cli.Export(rec, "end", outDir);
        var got = TreeListing.Of(outDir);
        Assert.True(got.SequenceEqual(upper), "after the rescan:\n" + TreeListing.Diff(upper, got) + "\n" + all);
        Assert.Contains(tl, r => r.Kind == "delete" && r.Path == "first.txt");
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DaemonCollection
{
    public const string Name = "diffkeeperd";
}
