using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using DiffKeeper.Shim.IntegrationTests.Conformance;
using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Recording;

/// <summary>
/// The recorder's exit path through a real containerd, runc and kernel overlay, with the daemon absent (or hung):
/// the container's exit code and timing are untouched, and its exit state is frozen into the spool by the shim
/// itself — by Delete(init) normally, by the <c>delete</c> subcommand when the shim was SIGKILLed.
/// </summary>
[Collection(SpoolContainerdCollection.Name)]
public sealed class RecorderSpoolTests(SpoolContainerdFixture fixture) : ChecklistTest(fixture)
{
    private readonly SpoolContainerdFixture _fx = fixture;

    /// <summary>A container that writes files, edits and deletes image files, and exits 3.</summary>
    private static readonly string[] Script =
    [
        "sh", "-c",
        "mkdir -p /data/sub && echo hello > /data/f && echo deep > /data/sub/g && echo root2:x:0:0::/:/bin/sh >> /etc/passwd " +
        "&& rm /bin/true && ln -s f /data/link && exit 3",
    ];

    private async Task<(TimeSpan Elapsed, CommandResult Result)> TimedRunRmAsync(string runtime, string id)
    {
        var clock = Stopwatch.StartNew();
        var r = await Ctr(TimeSpan.FromSeconds(60), new[] { "run", "--rm", "--runtime", runtime, Image, id }.Concat(Script).ToArray());
        return (clock.Elapsed, r);
    }

    private string[] EntriesFor(string id) =>
        Directory.Exists(Path.Combine(_fx.Spool, PrivateContainerd.Namespace))
            ? Directory.GetDirectories(Path.Combine(_fx.Spool, PrivateContainerd.Namespace), id + "-*")
            : [];

    private static JsonElement Manifest(string entry)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(entry, "manifest.json")));
        return doc.RootElement.Clone();
    }

    [SkippableFact]
    public async Task RunRm_NoDaemon_ExitCodeKept_SpoolEntryHoldsTheContainersChanges_NotSlowerThanRunc()
    {
        Fx.Require(ShimRuntimes.Runc);
        Fx.Require(ShimRuntimes.DiffKeeper);
        Assert.False(File.Exists(_fx.DaemonSocket));

        // One untimed run each first (a cold page cache for a shim binary is not what this compares), then alternate
        // the runtimes, so neither always runs on a warmer machine, and compare medians.
        AssertExit((await TimedRunRmAsync(ShimRuntimes.Runc, NewId("spool", ShimRuntimes.Runc, "warm"))).Result, 3);
        AssertExit((await TimedRunRmAsync(ShimRuntimes.DiffKeeper, NewId("spool", ShimRuntimes.DiffKeeper, "warm"))).Result, 3);
        var runc = new List<TimeSpan>();
        var dk = new List<TimeSpan>();
        string? lastDk = null;
        for (int i = 0; i < 3; i++)
        {
            var (t1, r1) = await TimedRunRmAsync(ShimRuntimes.Runc, NewId("spool", ShimRuntimes.Runc, $"rm{i}"));
            AssertExit(r1, 3);
            runc.Add(t1);
            lastDk = NewId("spool", ShimRuntimes.DiffKeeper, $"rm{i}");
            var (t2, r2) = await TimedRunRmAsync(ShimRuntimes.DiffKeeper, lastDk);
            AssertExit(r2, 3); // the recorder never changes the exit code
            dk.Add(t2);
        }
        var runcMedian = runc.Order().ElementAt(1);
        var dkMedian = dk.Order().ElementAt(1);
        // Generous: a shim that waited for the absent daemon, or froze slowly, would add whole seconds.
        Assert.True(dkMedian <= runcMedian * 1.5 + TimeSpan.FromMilliseconds(400),
            $"diffkeeper run --rm median {dkMedian.TotalMilliseconds:F0} ms vs runc {runcMedian.TotalMilliseconds:F0} ms " +
            $"(dk: {string.Join(", ", dk.Select(t => t.TotalMilliseconds.ToString("F0")))}; runc: {string.Join(", ", runc.Select(t => t.TotalMilliseconds.ToString("F0")))})");

        var entry = Assert.Single(EntriesFor(lastDk!));
        var m = Manifest(entry);
        Assert.Equal(3, m.GetProperty("exit_status").GetInt32());
        Assert.Equal("overlay", m.GetProperty("rootfs_type").GetString());
        Assert.Equal("hardlink", m.GetProperty("freeze").GetString()); // the spool is on the snapshots' file system
        Assert.Equal(0, m.GetProperty("freeze_errors").GetArrayLength());
        Assert.Equal("shim", m.GetProperty("frozen_by").GetString());
        Assert.Equal(JsonValueKind.Null, m.GetProperty("recording_id").ValueKind);
        Assert.Equal(lastDk, m.GetProperty("container").GetProperty("id").GetString());
        Assert.Contains(m.GetProperty("events").EnumerateArray(), e => e.GetProperty("kind").GetString() == "start");
        // The exit state: the container's files, its edit of an image file (copied up), its delete (a whiteout).
        var upper = Path.Combine(entry, "upper");
        Assert.Equal("hello\n", File.ReadAllText(Path.Combine(upper, "data", "f")));
        Assert.Equal("deep\n", File.ReadAllText(Path.Combine(upper, "data", "sub", "g")));
        Assert.EndsWith("root2:x:0:0::/:/bin/sh\n", File.ReadAllText(Path.Combine(upper, "etc", "passwd")));
        Assert.Equal("f", new FileInfo(Path.Combine(upper, "data", "link")).LinkTarget);
        Assert.True(IsCharDevice(Path.Combine(upper, "bin", "true")), "no whiteout (char 0:0) for the deleted /bin/true");
        // The snapshot itself is gone (ctr run --rm): the spool's hard links are what keeps the state.
        await AssertNothingLeftBehindAsync(lastDk!);
        Assert.True(Directory.Exists(upper));
    }

    [SkippableFact]
    public async Task KilledShim_DeleteSubcommand_FreezesTheExitState_IntoTheSpool()
    {
        Fx.Require(ShimRuntimes.DiffKeeper);
        var id = NewId("spool", ShimRuntimes.DiffKeeper, "kill");
        AssertExit(await Ctr("run", "-d", "--runtime", ShimRuntimes.DiffKeeper, Image, id, "sh", "-c", "echo y > /g; mkdir /h; exec sleep 1000"), 0);
        await Fx.WaitForStatusAsync(id, "RUNNING");
        var stateFile = Path.Combine(Containerd.BundleDir(id), "diffkeeper-shim.state");
        var upperDir = File.ReadAllLines(stateFile).Single(l => l.StartsWith("upperdir=", StringComparison.Ordinal))["upperdir=".Length..];
        await WaitUntilAsync(() => File.Exists(Path.Combine(upperDir, "g")), $"{upperDir}/g never appeared");
        Assert.Empty(EntriesFor(id));

        var shim = await Fx.ShimPidAsync(id);
        Assert.Equal(0, Libc.Kill(shim, Libc.SIGKILL));
        await Events.WaitForAsync(id, "/tasks/exit");
        await Events.WaitForAsync(id, "/tasks/delete");
        Assert.Contains(Fx.Shims.CallsFor(id), c => c.Action == "delete");

        var entry = Assert.Single(EntriesFor(id));
        var m = Manifest(entry);
        Assert.Equal("delete", m.GetProperty("frozen_by").GetString());
        Assert.Equal(137, m.GetProperty("exit_status").GetInt32());
        Assert.Equal("hardlink", m.GetProperty("freeze").GetString());
        Assert.Equal(upperDir, m.GetProperty("upper_dir").GetString());
        Assert.Equal(id, m.GetProperty("container").GetProperty("id").GetString()); // from the bundle state saved at Create
        Assert.Equal("y\n", File.ReadAllText(Path.Combine(entry, "upper", "g")));
        Assert.True(Directory.Exists(Path.Combine(entry, "upper", "h")));

        await Fx.WaitForStatusAsync(id, null);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
        Assert.Single(EntriesFor(id)); // containerd's later delete runs did not freeze the same exit again
    }

    [SkippableFact]
    public async Task HungDaemon_ContainerOperationsCompleteWithinTheBound_AndTheExitStateIsStillSpooled()
    {
        Fx.Require(ShimRuntimes.Runc);
        Fx.Require(ShimRuntimes.DiffKeeper);
        // A daemon that accepts connections and never reads or answers.
        using var hung = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        hung.Bind(new UnixDomainSocketEndPoint(_fx.DaemonSocket));
        hung.Listen(512);
        var held = new List<Socket>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try { while (true) { var s = await hung.AcceptAsync(stop.Token); lock (held) held.Add(s); } }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        });
        try
        {
            var baseline = await TimedRunRmAsync(ShimRuntimes.Runc, NewId("spool", ShimRuntimes.Runc, "hung"));
            AssertExit(baseline.Result, 3);

            var id = NewId("spool", ShimRuntimes.DiffKeeper, "hung");
            var (elapsed, r) = await TimedRunRmAsync(ShimRuntimes.DiffKeeper, id);
            AssertExit(r, 3);
            // Track (Create) and Exited (Delete) may each wait one timeout; lifecycle events never hold anything.
            var bound = baseline.Elapsed + 2 * SpoolContainerdFixture.RecorderTimeout + TimeSpan.FromSeconds(1.5);
            Assert.True(elapsed <= bound, $"run --rm took {elapsed.TotalMilliseconds:F0} ms with a hung daemon (runc: {baseline.Elapsed.TotalMilliseconds:F0} ms, bound {bound.TotalMilliseconds:F0} ms)");
            lock (held) Assert.NotEmpty(held); // the shim did reach the hung daemon: this tested the bound, not absence

            // exec, kill and delete of a running container are not held up either.
            var sleeper = NewId("spool", ShimRuntimes.DiffKeeper, "hung-exec");
            var clock = Stopwatch.StartNew();
            AssertExit(await Ctr("run", "-d", "--runtime", ShimRuntimes.DiffKeeper, Image, sleeper, "sleep", "1000"), 0);
            await Fx.WaitForStatusAsync(sleeper, "RUNNING");
            AssertExit(await Ctr("task", "exec", "--exec-id", "e1", sleeper, "sh", "-c", "exit 7"), 7);
            AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", sleeper), 0);
            await Fx.WaitForStatusAsync(sleeper, "STOPPED");
            AssertExit(await Ctr("task", "rm", sleeper), 0);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"run/exec/kill/rm took {clock.ElapsedMilliseconds} ms with a hung daemon");
            AssertExit(await Ctr("container", "rm", sleeper), 0);

            var entry = Assert.Single(EntriesFor(id));
            Assert.Equal("hardlink", Manifest(entry).GetProperty("freeze").GetString());
            Assert.Equal("hello\n", File.ReadAllText(Path.Combine(entry, "upper", "data", "f")));
            await AssertNothingLeftBehindAsync(id);
            await AssertNothingLeftBehindAsync(sleeper);
        }
        finally
        {
            stop.Cancel();
            hung.Dispose();
            await accepting;
            lock (held) foreach (var s in held) s.Dispose();
            if (File.Exists(_fx.DaemonSocket)) File.Delete(_fx.DaemonSocket);
        }
    }

    private static bool IsCharDevice(string path)
    {
        var r = ExternalCommand.RunAsync("stat", ["-c", "%F %t:%T", path], TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        return r.Stdout.Trim() == "character special file 0:0";
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException(failure);
            await Task.Delay(50);
        }
    }
}
