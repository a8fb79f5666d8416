using System.Diagnostics;
using System.Net.Sockets;

namespace DiffKeeper.Recorder.Tests;

/// <summary>Start-up, the socket, configuration, metrics, shutdown, and the per-container controls.</summary>
[Collection(DaemonCollection.Name)]
public sealed class DaemonBasicsTests
{
    [SkippableFact]
    public async Task The_socket_is_root_only_metrics_are_served_and_SIGTERM_exits_0_removing_the_socket()
    {
        var bins = Env.RequireDaemon();
        using var dir = new TempDir("dk-daemon-test-", onDisk: true);
        var socket = Path.Combine(dir.Path, "run", "sub", "diffkeeperd.sock");
        await using var d = await DaemonProcess.StartAsync(bins, Path.Combine(dir.Path, "store"), socket);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(socket)!));
        var status = await d.StatusAsync();
        Assert.Equal(Path.Combine(dir.Path, "store"), status.Store);
        Assert.Equal(Path.Combine(dir.Path, "store", "spool"), status.SpoolDir);
        Assert.Equal(0u, status.ContainersTracked);

        Assert.NotNull(d.MetricsPort);
        using (var tcp = new TcpClient("127.0.0.1", d.MetricsPort!.Value))
        {
            var stream = tcp.GetStream();
            await stream.WriteAsync("GET /metrics HTTP/1.0\r\nConnection: close\r\n\r\n"u8.ToArray());
            var body = await new StreamReader(stream).ReadToEndAsync();
            Assert.Matches(@"^HTTP/1\.[01] 200", body);
            foreach (var metric in new[] { "diffkeeper_containers_tracked 0", "diffkeeper_change_events_total", "diffkeeper_versions_written_total",
                         "diffkeeper_bytes_ingested_total", "diffkeeper_kernel_events_lost_total", "diffkeeper_kernel_events_merged_total",
                         "diffkeeper_ingest_lag_seconds", "diffkeeper_spool_backlog" })
                Assert.Contains(metric, body);
        }

        // A second daemon on the same socket is refused (and does not steal it).
        var second = Process.Start(new ProcessStartInfo(bins.Daemon, ["--store", Path.Combine(dir.Path, "store2"), "--socket", socket, "--config", "/dev/null"])
        { RedirectStandardError = true })!;
        var err = await second.StandardError.ReadToEndAsync();
        await second.WaitForExitAsync();
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains("already serving", err);
        await d.StatusAsync();

        Assert.Equal(0, await d.StopAsync(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(socket), "the socket is removed on SIGTERM");
    }

    [SkippableFact]
    public void A_broken_config_file_is_a_clear_error_naming_line_and_column()
    {
        var bins = Env.RequireDaemon();
        using var dir = new TempDir("dk-daemon-test-", onDisk: true);
        (string Toml, string Expect)[] cases =
        [
            ("frame = \"100ms\"\nstore = \n", "config.toml:2:9"),
            ("frame = \"fast\"\n", "frame must be a duration"),
            ("[retention]\nkeep = \"sometimes\"\n", "retention.keep must be \"always\" or \"failure\""),
            ("sockett = \"/x\"\n", "unknown key \"sockett\""),
            ("[ingest]\npaced_rate = \"fast\"\n", "ingest.paced_rate must be a size"),
            ("[ingest]\nmax_paced_delay = 5\n", "ingest.max_paced_delay must be a duration"),
            ("[ingest]\npace = \"1MiB\"\n", "unknown key \"ingest.pace\""),
        ];
        foreach (var (toml, expect) in cases)
        {
            var cfg = Path.Combine(dir.Path, "config.toml");
            File.WriteAllText(cfg, toml);
            var p = Process.Start(new ProcessStartInfo(bins.Daemon, ["--config", cfg, "--store", Path.Combine(dir.Path, "store"), "--socket", Path.Combine(dir.Path, "s.sock")])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(10_000));
            Assert.Equal(2, p.ExitCode);
            Assert.Contains(expect, err);
            Assert.StartsWith("diffkeeperd: ", err);
            Assert.DoesNotContain("   at ", err); // one line, no stack trace
            Assert.False(File.Exists(Path.Combine(dir.Path, "s.sock")));
        }
    }

    [SkippableFact]
    public async Task Record_false_records_nothing_and_a_rootfs_that_is_not_an_overlay_gets_a_recording_that_says_why()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins);
        var off = s.Info.Clone();
        off.Id = "off-" + s.Info.Id;
        off.Annotations["io.diffkeeper/record"] = "false";
        var tr = await s.Daemon.TrackAsync(off, DateTime.UtcNow);
        Assert.False(tr.Recording);
        Assert.Equal(0ul, tr.RecordingId);
        Assert.Contains("record=false", tr.Reason);
        s.Shell.Step("echo x > x.txt");
        Thread.Sleep(300);
        Assert.Empty(s.Cli.Recordings());

        var bind = s.Info.Clone();
        bind.Id = "bind-" + s.Info.Id;
        bind.UpperDir = "";
        bind.LowerDirs.Clear();
        bind.RootfsType = "bind";
        tr = await s.Daemon.TrackAsync(bind, DateTime.UtcNow);
        Assert.True(tr.Recording);
        Assert.Contains("not an overlay", tr.Reason);
        var tl = s.Cli.Timeline(tr.RecordingId.ToString("x16"));
        Assert.Contains(tl, r => r.Kind == "gap" && r.Detail!.Contains("not an overlay") && r.Detail.Contains("bind"));
        Assert.Contains(tl, r => r.Kind == "create");
    }

    [SkippableFact]
    public async Task Keep_failure_drops_the_recording_of_a_container_that_exited_0()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins, annotations: new Dictionary<string, string> { ["io.diffkeeper/keep"] = "failure" });
        var created = DateTime.UtcNow;
        var tr = await s.Daemon.TrackAsync(s.Info, created);
        Assert.True(tr.Recording);
        s.Shell.Step("echo ok > ok.txt");
        Thread.Sleep(300);
        Assert.Single(s.Cli.Recordings());
        var entry = SpoolEntry.Freeze(tr.SpoolDir, s.Overlay.Upper, s.Info, tr.RecordingId, created, DateTime.UtcNow, 0);
        await s.Daemon.ExitedAsync(s.Info.Namespace, s.Info.Id, entry, 0, DateTime.UtcNow);
        SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(30), () => s.Daemon.Log);
        Assert.Empty(s.Cli.Recordings());
    }

    [SkippableFact]
    public async Task Garbage_on_the_socket_closes_that_connection_only_and_Exited_outside_the_spool_is_refused()
    {
        var bins = Env.RequireDaemon();
        await using var s = await Scenario.StartAsync(bins);
        using (var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            raw.Connect(new UnixDomainSocketEndPoint(s.Socket));
            raw.Send(new byte[] { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 9, 0 }); // a frame header claiming 4 GiB, unknown type
            var buf = new byte[64];
            raw.ReceiveTimeout = 5000;
            try { while (raw.Receive(buf) > 0) { } } catch (SocketException) { }
        }
        await s.Daemon.StatusAsync();
        var outside = Path.Combine(s.Dir.Path, "not-the-spool");
        Directory.CreateDirectory(outside);
        var e = await Assert.ThrowsAsync<DiffKeeper.Ttrpc.TtrpcException>(() => s.Daemon.ExitedAsync(s.Info.Namespace, s.Info.Id, outside, 1, DateTime.UtcNow));
        Assert.Equal(DiffKeeper.Ttrpc.TtrpcStatusCode.InvalidArgument, e.Code);
        Assert.True(Directory.Exists(outside));
    }
}
