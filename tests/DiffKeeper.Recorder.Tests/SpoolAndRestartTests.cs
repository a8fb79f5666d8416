namespace DiffKeeper.Recorder.Tests;

/// <summary>The spool contract of docs/recorder.md: exit states the daemon ingests after a crash or while it was away.</summary>
[Collection(DaemonCollection.Name)]
public sealed class SpoolAndRestartTests
{
    [SkippableFact]
    public async Task Daemon_killed_mid_recording_then_restarted_ingests_the_spool_entry_and_shows_the_gap()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins);
        var created = DateTime.UtcNow;
        var tr = await s.Daemon.TrackAsync(s.Info, created);
        Integration.Require(tr.Reason == "", "live capture is not available: " + tr.Reason);
        var rec = tr.RecordingId.ToString("x16");
        s.Shell.Step("echo before > before.txt");
        Thread.Sleep(400);

        await s.Daemon.KillAsync(); // SIGKILL: no flush, the socket file stays behind
        Assert.True(File.Exists(s.Socket), "a killed daemon leaves its socket");
        var startedWhileDown = DateTime.UtcNow;
        s.Shell.Step("echo during > during.txt && rm before.txt");    // the container is unaffected
        int exit = s.Shell.Exit();
        Assert.Equal(3, exit);
        var exitedAt = DateTime.UtcNow;
        var upper = TreeListing.Of(s.Overlay.Upper);
        // The shim could not reach the daemon: it froze into the default spool by itself.
        var entry = SpoolEntry.Freeze(tr.SpoolDir, s.Overlay.Upper, s.Info, tr.RecordingId, created, exitedAt, exit,
            [("start", created.AddMilliseconds(5), s.Shell.Pid)]);

        s.Daemon = await DaemonProcess.StartAsync(bins, s.Store, s.Socket); // replaces the stale socket
        SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(30), () => s.Daemon.Log);

        var ls = s.Cli.Recordings().Single(r => r.GetProperty("id").GetString() == rec);
        Assert.Equal(3, ls.GetProperty("exit_status").GetInt32());
        var tl = s.Cli.Timeline(rec);
        var all = string.Join('\n', tl) + "\n--- daemon:\n" + s.Daemon.Log;
        Assert.True(tl.Any(r => r.Kind == "create" && r.Path == "before.txt"), "the live part before the kill is kept:\n" + all);
        Assert.True(tl.Any(r => r.Kind == "gap" && r.Detail != null && r.Detail.Contains("not running")), "a gap for the downtime:\n" + all);
        Assert.True(tl.Any(r => r.Kind == "start"), "the lifecycle event from the manifest:\n" + all);
        Assert.True(tl.Any(r => r.Kind == "exit" && r.Detail == "3"), all);
        var endDir = Path.Combine(s.Dir.Path, "export-end");
        s.Cli.Export(rec, "end", endDir);
        var end = TreeListing.Of(endDir);
        Assert.True(end.SequenceEqual(upper), "exit state:\n" + TreeListing.Diff(upper, end));
        _ = startedWhileDown;
    }

    [SkippableFact]
    public async Task An_entry_of_a_container_the_daemon_never_saw_becomes_a_recording_and_a_broken_one_is_set_aside()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins, startDaemon: false);
        File.WriteAllText(Path.Combine(s.Overlay.Merged, "result.txt"), "42\n");
        Directory.CreateDirectory(Path.Combine(s.Overlay.Merged, "logs"));
        File.WriteAllText(Path.Combine(s.Overlay.Merged, "logs", "run.log"), "crashed\n");
        var created = DateTime.UtcNow.AddSeconds(-5);
        var exitedAt = DateTime.UtcNow;
        var upper = TreeListing.Of(s.Overlay.Upper);
        var entry = SpoolEntry.Freeze(Path.Combine(s.Store, "spool"), s.Overlay.Upper, s.Info, null, created, exitedAt, 137);
        // A freeze whose manifest is garbage, and one that never finished (no manifest yet: left alone).
        var bad = Path.Combine(s.Store, "spool", s.Info.Namespace, "broken-1");
        Directory.CreateDirectory(Path.Combine(bad, "upper"));
        SpoolEntry.WriteManifest(bad, "{\"version\":1,\"namespace\":");
        var incomplete = Path.Combine(s.Store, "spool", s.Info.Namespace, "in-progress-2");
        Directory.CreateDirectory(Path.Combine(incomplete, "upper"));

        s.Daemon = await DaemonProcess.StartAsync(bins, s.Store, s.Socket);
        SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(30), () => s.Daemon.Log);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!Directory.Exists(bad + ".bad") && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.True(Directory.Exists(bad + ".bad"), "the broken entry is set aside as .bad:\n" + s.Daemon.Log);
        Assert.False(Directory.Exists(bad));
        Assert.True(Directory.Exists(incomplete), "an entry without its manifest (a freeze in progress) is left alone");
        // The log line follows the rename, and stderr is read asynchronously: give it a moment.
        for (var until = DateTime.UtcNow.AddSeconds(5); !s.Daemon.Log.Contains(".bad") && DateTime.UtcNow < until;) Thread.Sleep(50);
        Assert.Contains("manifest.json", s.Daemon.Log);
        await s.Daemon.StatusAsync(); // still serving

        var ls = s.Cli.Recordings().Single(r => r.GetProperty("container_id").GetString() == s.Info.Id);
        Assert.Equal(137, ls.GetProperty("exit_status").GetInt32());
        var rec = ls.GetProperty("id").GetString()!;
        var tl = s.Cli.Timeline(rec);
        Assert.Contains(tl, r => r.Kind == "gap" && r.Detail != null && r.Detail.Contains("not running while the container ran"));
        var endDir = Path.Combine(s.Dir.Path, "export-end");
        s.Cli.Export(rec, "end", endDir);
        var end = TreeListing.Of(endDir);
        Assert.True(end.SequenceEqual(upper), "exit state:\n" + TreeListing.Diff(upper, end));
    }
}
