using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using DiffKeeper.Shim.Mounts;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Service;
using Xunit;
using static DiffKeeper.Shim.Tests.Recording.ByteFs;

namespace DiffKeeper.Shim.Tests.Recording;

/// <summary>
/// The daemon hook end to end against a live overlay and a real ttrpc peer (or none): Track's ContainerInfo, the
/// lifecycle queue, the freeze into the spool and its manifest, Exited; and the bounds — no daemon means no
/// waiting at all, a hung daemon costs at most the configured time per call and never the freeze.
/// </summary>
public sealed class DaemonRecorderHookTests
{
    private static readonly DateTime ExitedAt = new(2026, 11, 30, 10, 0, 0, 123, DateTimeKind.Utc);

    private sealed class Setup : IDisposable
    {
        public OverlayLab Lab { get; } = new();
        public string Bundle { get; }
        public string Spool { get; }
        public string Socket { get; }

        public Setup()
        {
            Lab.DoContainerWork();
            Bundle = Path.Combine(Lab.Root, "bundle");
            Directory.CreateDirectory(Bundle);
            File.WriteAllText(Path.Combine(Bundle, "config.json"), """
                {"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":1000,"gid":100},"args":["sh","-c","exit 3"],
                 "env":["PATH=/bin","SECRET_TOKEN=hunter2"],"cwd":"/work"},
                 "annotations":{"io.kubernetes.cri.container-name":"app","x":"y"}}
                """);
            Spool = Path.Combine(Lab.Root, "spool");
            Socket = Path.Combine(Lab.Root, "d.sock");
        }

        public RecorderSettings Settings(TimeSpan timeout) => new(Socket, Spool, timeout, TimeSpan.FromSeconds(30));

        public ContainerRecordInfo Info(string type = "overlay") => new("dk", "t1", Bundle, Lab.Merged,
            type == "overlay" ? Lab.Upper : null, Environment.ProcessId,
            type == "overlay" ? new RootfsLayout("overlay", Lab.Upper, [Lab.Lower], Lab.Work) : new RootfsLayout(type, null, [], null),
            OciSpec.Load(Bundle), ExitedAt);

        public string ExpectedEntry(string spool) => Path.Combine(spool, "dk", $"t1-{BundleState.ToUnixNanos(ExitedAt)}");

        public void Dispose() => Lab.Dispose();
    }

    private static void RequireRoot() => Integration.RequireRoot("needs root: overlay mounts");

    [SkippableFact]
    public async Task NoDaemon_NoWaiting_FreezesIntoTheDefaultSpool_ManifestComplete_AndTheCrashPathDoesNotFreezeAgain()
    {
        RequireRoot();
        using var s = new Setup();
        // A long timeout: if anything waited for the absent daemon, the elapsed times below would show it.
        await using var hook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(10)), "/run/containerd/containerd.sock");
        var info = s.Info();

        var clock = Stopwatch.StartNew();
        await hook.OnCreatedAsync(info, CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"Track with no daemon took {clock.ElapsedMilliseconds} ms");
        hook.OnLifecycle(new LifecycleEvent("dk", "t1", "start", DateTime.UtcNow, 4242));
        await hook.FlushAsync(TimeSpan.FromSeconds(5));
        var upperBefore = Snapshot(s.Lab.Upper);

        clock.Restart();
        await hook.OnExitedBeforeUnmountAsync(info, 3, CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"freeze + Exited with no daemon took {clock.ElapsedMilliseconds} ms");

        var entry = s.ExpectedEntry(s.Spool);
        UpperFreezerTests.AssertSameTree(upperBefore, Snapshot(Path.Combine(entry, "upper")));
        var manifestText = File.ReadAllText(Path.Combine(entry, "manifest.json"));
        Assert.DoesNotContain("hunter2", manifestText); // env values never leave the shim
        using var manifest = JsonDocument.Parse(manifestText);
        var m = manifest.RootElement;
        Assert.Equal(1, m.GetProperty("version").GetInt32());
        Assert.Equal("dk", m.GetProperty("namespace").GetString());
        Assert.Equal("t1", m.GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Null, m.GetProperty("recording_id").ValueKind);
        Assert.True(m.GetProperty("created_at").GetDateTime() <= DateTime.UtcNow);
        Assert.Equal(ExitedAt, m.GetProperty("exited_at").GetDateTime().ToUniversalTime());
        Assert.Equal(3, m.GetProperty("exit_status").GetInt32());
        Assert.Equal(s.Lab.Upper, m.GetProperty("upper_dir").GetString());
        Assert.Equal("overlay", m.GetProperty("rootfs_type").GetString());
        Assert.Equal("hardlink", m.GetProperty("freeze").GetString());
        Assert.Equal(0, m.GetProperty("freeze_errors").GetArrayLength());
        Assert.True(m.GetProperty("freeze_complete").GetBoolean());
        var container = m.GetProperty("container");
        Assert.Equal(s.Lab.Upper, container.GetProperty("upperDir").GetString());
        Assert.Equal(s.Lab.Lower, container.GetProperty("lowerDirs")[0].GetString());
        Assert.Equal(["PATH", "SECRET_TOKEN"], container.GetProperty("process").GetProperty("envNames").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("app", container.GetProperty("annotations").GetProperty("io.kubernetes.cri.container-name").GetString());
        var events = m.GetProperty("events").EnumerateArray().ToList();
        Assert.Contains(events, e => e.GetProperty("kind").GetString() == "start" && e.GetProperty("pid").GetInt32() == 4242);
        Assert.Equal(entry, BundleState.Load(s.Bundle, "dk").FrozenEntry);

        // The delete subcommand (a new process: nothing in memory) must see the marker and leave the spool alone.
        await using var crashHook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(10)), "", "delete");
        await crashHook.OnExitedBeforeUnmountAsync(info with { ExitedAt = ExitedAt.AddSeconds(1), Layout = null, Spec = null }, 137, CancellationToken.None);
        Assert.Single(Directory.GetDirectories(Path.Combine(s.Spool, "dk")));
    }

    [SkippableFact]
    public async Task CrashPath_WithOnlyTheBundleState_FreezesWithTheContainerInfoSavedAtCreate()
    {
        RequireRoot();
        using var s = new Setup();
        await using (var serving = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(1)), "/c.sock"))
            await serving.OnCreatedAsync(s.Info(), CancellationToken.None); // then the shim "dies"

        await using var crash = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(1)), "/c.sock", "delete");
        var stateOnly = new ContainerRecordInfo("dk", "t1", s.Bundle, s.Lab.Merged, BundleState.Load(s.Bundle, "dk").UpperDir, 0);
        await crash.OnExitedBeforeUnmountAsync(stateOnly with { ExitedAt = ExitedAt }, 137, CancellationToken.None);

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(s.ExpectedEntry(s.Spool), "manifest.json")));
        var m = manifest.RootElement;
        Assert.Equal("delete", m.GetProperty("frozen_by").GetString());
        Assert.Equal(137, m.GetProperty("exit_status").GetInt32());
        Assert.Equal("hardlink", m.GetProperty("freeze").GetString());
        Assert.Equal("overlay", m.GetProperty("rootfs_type").GetString());
        Assert.Equal("/c.sock", m.GetProperty("container").GetProperty("containerdAddress").GetString());
        Assert.Equal(JsonValueKind.String, m.GetProperty("created_at").ValueKind);
    }

    [SkippableFact]
    public async Task NotOverlay_ManifestSaysFreezeNone_AndHasNoUpperTree()
    {
        RequireRoot();
        using var s = new Setup();
        await using var hook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(1)), "");
        var info = s.Info("bind");
        await hook.OnCreatedAsync(info, CancellationToken.None);
        await hook.OnExitedBeforeUnmountAsync(info, 0, CancellationToken.None);

        var entry = s.ExpectedEntry(s.Spool);
        Assert.False(Directory.Exists(Path.Combine(entry, "upper")));
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(entry, "manifest.json")));
        Assert.Equal("none", manifest.RootElement.GetProperty("freeze").GetString());
        Assert.Equal("bind", manifest.RootElement.GetProperty("rootfs_type").GetString());
        Assert.Equal(JsonValueKind.Null, manifest.RootElement.GetProperty("upper_dir").ValueKind);
    }

    [SkippableFact]
    public async Task LiveDaemon_GetsTrackLifecycleAndExited_AndItsSpoolDirIsUsed()
    {
        RequireRoot();
        using var s = new Setup();
        var daemonSpool = Path.Combine(s.Lab.Root, "daemon-spool");
        await using var daemon = FakeRecorderDaemon.Serve(s.Socket);
        daemon.TrackReply = new() { Recording = true, RecordingId = 0x2a, SpoolDir = daemonSpool };
        await using var hook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(5)), "/run/c.sock");
        var info = s.Info();

        await hook.OnCreatedAsync(info, CancellationToken.None);
        hook.OnLifecycle(new LifecycleEvent("dk", "t1", "start", DateTime.UtcNow, 77));
        hook.OnLifecycle(new LifecycleEvent("dk", "t1", "exit", DateTime.UtcNow, 78, "e1", 7));
        await hook.FlushAsync(TimeSpan.FromSeconds(5));
        await hook.OnExitedBeforeUnmountAsync(info, 3, CancellationToken.None);

        var track = Assert.Single(daemon.Tracks);
        var c = track.Container;
        Assert.Equal(("dk", "t1", s.Bundle, s.Lab.Merged), (c.Namespace, c.Id, c.Bundle, c.Rootfs));
        Assert.Equal((s.Lab.Upper, s.Lab.Work, "overlay"), (c.UpperDir, c.WorkDir, c.RootfsType));
        Assert.Equal([s.Lab.Lower], c.LowerDirs);
        Assert.Equal(Environment.ProcessId, c.InitPid);
        var ownMntNs = new FileInfo("/proc/self/ns/mnt").LinkTarget!; // "mnt:[N]"
        Assert.Equal(ownMntNs, $"mnt:[{c.MountNamespace}]");
        Assert.NotEmpty(c.CgroupPath);
        Assert.Equal(["sh", "-c", "exit 3"], c.Process.Args);
        Assert.Equal(["PATH", "SECRET_TOKEN"], c.Process.EnvNames);
        Assert.Equal(("/work", 1000u, 100u, false), (c.Process.Cwd, c.Process.Uid, c.Process.Gid, c.Process.Terminal));
        Assert.Equal("y", c.Annotations["x"]);
        Assert.Equal(Environment.ProcessId, c.ShimPid);
        Assert.Equal("/run/c.sock", c.ContainerdAddress);
        Assert.NotNull(track.CreatedAt);

        Assert.Equal(["start", "exit"], daemon.Lifecycles.Select(l => l.Kind));
        Assert.Equal((78, "e1", 7), (daemon.Lifecycles[1].Pid, daemon.Lifecycles[1].ExecId, daemon.Lifecycles[1].ExitStatus));

        var entry = s.ExpectedEntry(daemonSpool);
        var exited = Assert.Single(daemon.Exiteds);
        Assert.Equal((entry, 3, "t1"), (exited.SpoolEntry, exited.ExitStatus, exited.Id));
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(entry, "manifest.json")));
        Assert.Equal("000000000000002a", manifest.RootElement.GetProperty("recording_id").GetString());
        Assert.Equal(0, manifest.RootElement.GetProperty("events").GetArrayLength()); // the daemon saw them all
        Assert.Equal("42", BundleState.Load(s.Bundle, "dk").RecordingId.ToString());
    }

    [SkippableFact]
    public async Task DaemonRestart_TheNextCallDialsAgain()
    {
        RequireRoot();
        using var s = new Setup();
        await using var hook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(5)), "");
        var first = FakeRecorderDaemon.Serve(s.Socket);
        await hook.OnCreatedAsync(s.Info(), CancellationToken.None);
        Assert.Single(first.Tracks);
        await first.DisposeAsync(); // the daemon goes away (its connection with it) …

        hook.OnLifecycle(new LifecycleEvent("dk", "t1", "start", DateTime.UtcNow, 1)); // … an event while it is down: kept
        await hook.FlushAsync(TimeSpan.FromSeconds(5));
        await using var second = FakeRecorderDaemon.Serve(s.Socket); // … and comes back
        hook.OnLifecycle(new LifecycleEvent("dk", "t1", "exec-added", DateTime.UtcNow, ExecId: "e1"));
        await hook.FlushAsync(TimeSpan.FromSeconds(5));
        await hook.OnExitedBeforeUnmountAsync(s.Info(), 0, CancellationToken.None);

        Assert.Equal(["exec-added"], second.Lifecycles.Select(l => l.Kind));
        Assert.Single(second.Exiteds);
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(s.ExpectedEntry(s.Spool), "manifest.json")));
        Assert.Equal(["start"], manifest.RootElement.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("kind").GetString()));
    }

    [SkippableFact]
    public async Task HungDaemon_EachCallEndsAtTheTimeout_LifecycleNeverBlocksAndDropsWhenFull_TheFreezeStillHappens()
    {
        RequireRoot();
        using var s = new Setup();
        await using var daemon = FakeRecorderDaemon.Hung(s.Socket);
        var timeout = TimeSpan.FromMilliseconds(300);
        await using var hook = new DaemonRecorderHook(s.Settings(timeout), "");
        var info = s.Info();

        var clock = Stopwatch.StartNew();
        await hook.OnCreatedAsync(info, CancellationToken.None);
        var track = clock.Elapsed;
        Assert.True(track >= timeout - TimeSpan.FromMilliseconds(50), $"Track returned after {track.TotalMilliseconds} ms: did it talk to the hung daemon at all?");
        Assert.True(track < timeout + TimeSpan.FromSeconds(1), $"Track took {track.TotalMilliseconds} ms against a hung daemon");

        clock.Restart();
        for (int i = 0; i < 2 * DaemonRecorderHook.QueueCapacity + 10; i++)
            hook.OnLifecycle(new LifecycleEvent("dk", "t1", "exec-added", DateTime.UtcNow, ExecId: "e" + i));
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"queueing lifecycle events took {clock.ElapsedMilliseconds} ms");
        Assert.True(hook.DroppedEvents > 0, "a full queue must drop (and count), not wait");

        clock.Restart();
        await hook.OnExitedBeforeUnmountAsync(info, 3, CancellationToken.None);
        Assert.True(clock.Elapsed < timeout + TimeSpan.FromSeconds(3), $"exit took {clock.ElapsedMilliseconds} ms against a hung daemon");
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(s.ExpectedEntry(s.Spool), "manifest.json")));
        Assert.Equal("hardlink", manifest.RootElement.GetProperty("freeze").GetString());
        Assert.True(manifest.RootElement.GetProperty("events_dropped").GetInt64() > 0);
    }

    [SkippableFact]
    public async Task StaleSocket_ConnectionRefused_NoWaiting()
    {
        RequireRoot();
        using var s = new Setup();
        // A socket file nobody listens on any more (the daemon died): connect gets ECONNREFUSED at once.
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            dead.Bind(new UnixDomainSocketEndPoint(s.Socket));
        if (!File.Exists(s.Socket)) File.WriteAllText(s.Socket, ""); // .NET unlinked it: any non-socket file refuses too
        await using var hook = new DaemonRecorderHook(s.Settings(TimeSpan.FromSeconds(10)), "");
        var clock = Stopwatch.StartNew();
        await hook.OnCreatedAsync(s.Info(), CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"Track against a dead socket took {clock.ElapsedMilliseconds} ms");
    }
}
