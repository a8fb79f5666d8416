using DiffKeeper.TestSupport;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using Xunit;

namespace DiffKeeper.Oci.Tests;

/// <summary>`replay` against a private containerd with the busybox image: the moment's files, the exit status, cleanup.</summary>
[Collection(CliCollection.Name)]
public sealed class ReplayTests(CliBinary binary) : IDisposable
{
    private readonly TempDir _tmp = new("dk-replay-test-", onDisk: true);
    private DiffKeeperCli Cli => new(binary.Executable, _tmp.Sub("store"));

    public void Dispose() => _tmp.Dispose();

    [SkippableFact]
    public void Replay_runs_the_moment_on_containerd_and_leaves_nothing_behind()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        var up = RecordHelloAt0s(up =>
        {
            Posix.MkDir(up + "/etc");
            Posix.MkWhiteout(up + "/etc/gone");
        });
        Posix.Unlink(up + "/data/a");
        Posix.WriteFile(up + "/data/a", "changed at 2s\n"u8);
        Cli.Run("snapshot", up, "--recording", "app", "--at", "2s").ExpectOk();
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));

        const string script = """
            dkctr image import "$1" >&2
            rp() { "$DK_CLI" --store "$DK_STORE" replay app --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" "$@"; }
            rp --at 1s -- sh -c 'cat /data/a /opt/other/o; ls /etc'
            rp -- cat /data/a
            printf 'one\ntwo\n' | rp -i -- sh -c 'read a; read b; echo "$b $a"'
            echo unseen | rp -- sh -c 'cat; echo no stdin without -i'
            rp --at 1s -- sh -c 'exit 7' && exit 9
            echo "exit $?"
            "$DK_CLI" --store "$DK_STORE" bisect app --replay --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" --json \
              --test 'test "$PWD" = / && test "$DIFFKEEPER_STATE" = / && cat data/a && grep -q hello data/a' >"$DK_BISECT" 2>"$DK_BISECT.err"
            echo "containers: $(dkctr containers ls -q | wc -l) leases: $(dkctr leases ls -q | wc -l) snapshots: $(dkctr snapshots ls | tail -n +2 | wc -l)"
            rp --keep --name kept -- true
            echo "kept: $(dkctr containers ls -q) snapshots: $(dkctr snapshots ls | tail -n +2 | wc -l)"
            """;
        var bisect = _tmp.Sub("bisect");
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar],
            new Dictionary<string, string> { ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store, ["DK_BISECT"] = bisect });
        Assert.True(run.ExitCode == 0, run.Describe());
        // bisect --replay: the check ran in containers (from /, DIFFKEEPER_STATE=/) at 2s (bad) and 0s (good); its
        // output went to stderr; stdout holds only the probes and the result.
        var probes = File.ReadAllLines(bisect);
        Assert.True(probes.Length == 3, string.Join("\n", probes) + "\n" + File.ReadAllText(bisect + ".err"));
        Assert.Contains("\"result\":\"bad\"", probes[0]);
        Assert.Contains("\"result\":\"good\"", probes[1]);
        Assert.Contains("\"first_bad\":{\"moment\":2,", probes[2]);
        Assert.Contains("2026-11-30T10:00:02", probes[2]);
        var bisectErr = File.ReadAllText(bisect + ".err");
        Assert.Contains("changed at 2s", bisectErr);
        Assert.Contains("hello at 0s", bisectErr);
        Assert.Equal(
            "hello at 0s\nuntouched\npasswd\n" +   // the state at 1s over the image: /etc/gone whited out
            "changed at 2s\n" +                     // default --at end
            "two one\nno stdin without -i\n" +     // -i passes stdin (EOF ends it); without it the task gets none
            "exit 7\n" +                             // the container's exit status is ours
            "containers: 0 leases: 0 snapshots: 1\n" + // only the image's own snapshot remains
            "kept: kept snapshots: 3\n",
            run.Stdout);
        Assert.False(Directory.Exists(_tmp.Sub("containerd")));
    }

    /// <summary>
    /// The overlay fast path (the state written into the snapshot's upper directory) and the tar fallback (another
    /// snapshotter: native) both show exactly `export --at T --out DIR` over the image, hostile names included; a
    /// symlink to a directory outside is recreated, never written through; --cache keeps one snapshot for the next.
    /// </summary>
    [SkippableFact]
    public void Replay_shows_export_at_T_over_the_image_on_the_fast_path_and_the_tar_fallback()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        Integration.Require(Integration.HasTool("python3"), "needs python3 (reads an xattr)");
        var outside = _tmp.Sub("outside");
        Posix.MkDir(outside);
        RecordedMoment.Record(Cli, _tmp.Sub("upper"), outside);
        var exportDir = _tmp.Sub("export");
        Cli.Run("export", "app", "--at", "1s", "--out", exportDir).ExpectOk();
        string[] dirs = ["data", "etc", "opt/keep"]; // what the recording holds (the image adds others beside them)
        var host = Tools.Run(BusyboxArchive.Busybox, ["sh", "-c", RecordedMoment.DescribeTree, "sh", .. dirs], cwd: exportDir);
        Assert.True(host.ExitCode == 0, host.Describe());
        Assert.Contains("data/b regular file 640 12 34 2", host.Stdout); // the hard link: one inode, two names
        Assert.Contains("data/new\nline", host.Stdout);
        Assert.Contains($"data/esc symlink {outside}\n", host.Stdout);
        Assert.Contains("data/dir/nested", host.Stdout); // the state at 1s, not the end
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));

        const string script = """
            dkctr image import "$1" >&2
            dkctr image import --snapshotter native "$1" >&2
            rp() { "$DK_CLI" --store "$DK_STORE" replay app --at 1s --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" "$@"; }
            checks='cd / && sh -c "$0" sh data etc opt/keep; echo ---; [ -e /etc/gone ] && echo "whiteout failed"; [ -e /opt/keep/k ] && echo "opaque failed"; cat /opt/other/o /etc/passwd'
            rp -v -- sh -c "$checks" "$DK_TREE" 2>"$DK_ERR.fast"
            echo ===
            rp -v --tmpfs-max 0 -- sh -c "$checks" "$DK_TREE" 2>"$DK_ERR.disk"
            echo ===
            rp -v --snapshotter native -- sh -c "$checks" "$DK_TREE" 2>"$DK_ERR.tar"
            echo ===
            count() { echo "tmpfs mounts: $(grep -c ' diffkeeper-replay ' /proc/self/mountinfo) containers: $(dkctr containers ls -q | wc -l) leases: $(dkctr leases ls -q | wc -l) snapshots: $(dkctr snapshots ls | tail -n +2 | wc -l) native: $(dkctr snapshots --snapshotter native ls | tail -n +2 | wc -l)"; }
            count
            rp --cache -v -- cat /data/a 2>>"$DK_ERR.cache"
            rp --cache -v -- cat /data/a 2>>"$DK_ERR.cache"
            count
            echo ===
            rp --keep --name kept -- true
            mkdir -p "$DK_MNT"
            eval "$(dkctr snapshots mounts "$DK_MNT" kept)"
            python3 -c 'import os, sys; print(os.getxattr(sys.argv[1] + "/data/a", "user.note").decode())' "$DK_MNT" || true
            umount "$DK_MNT"
            """;
        var err = _tmp.Sub("replay.err");
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar], new Dictionary<string, string>
        {
            ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store, ["DK_ERR"] = err, ["DK_TREE"] = RecordedMoment.DescribeTree, ["DK_MNT"] = _tmp.Sub("mnt"),
        });
        Assert.True(run.ExitCode == 0, run.Describe() + "\nfast: " + ReadOr(err + ".fast") + "\ntar: " + ReadOr(err + ".tar"));
        var parts = run.Stdout.Split("===\n");
        Assert.Equal(5, parts.Length);
        const string imageChecks = "untouched\nroot:x:0:0:root:/root:/bin/sh\nextra:x:1:1::/:/bin/sh\n"; // no whiteout/opaque failure
        Assert.Equal(host.Stdout + "---\n" + imageChecks, parts[0]);
        Assert.Equal(host.Stdout + "---\n" + imageChecks, parts[1]);
        Assert.Equal(host.Stdout + "---\n" + imageChecks, parts[2]);
        // Without --keep/--cache the state goes into a tmpfs of its own (this kernel's tmpfs holds the recording's
        // user.* xattr: no warning that one could not be set), or with --tmpfs-max 0 into the state snapshot's
        // upper directory; either directory goes straight under the writable snapshot (no Commit). The fallback
        // has no directory of ours to lay there and commits.
        var fast = File.ReadAllText(err + ".fast");
        Assert.Contains("written into a tmpfs of ", fast);
        Assert.DoesNotContain("warning", fast);
        Assert.Contains("laid under the writable snapshot (not committed)", fast);
        var disk = File.ReadAllText(err + ".disk");
        Assert.Contains("written into the overlay upper directory", disk);
        Assert.Contains("laid under the writable snapshot (not committed); not in memory: --tmpfs-max 0", disk);
        Assert.Contains("a tar layer unpacked by containerd (Diff.Apply)", File.ReadAllText(err + ".tar"));
        Assert.DoesNotContain("laid under the writable snapshot", File.ReadAllText(err + ".tar"));
        Assert.Equal(
            "tmpfs mounts: 0 containers: 0 leases: 0 snapshots: 1 native: 1\n" + // only the image's own snapshots remain
            "hello at 0s\nhello at 0s\n" +
            "tmpfs mounts: 0 containers: 0 leases: 1 snapshots: 2 native: 1\n", // the cache: its lease and one snapshot
            parts[3]);
        var cacheErr = File.ReadAllText(err + ".cache");
        Assert.Contains(", kept as diffkeeper-replay-cache-", cacheErr);
        Assert.Contains("state at 2026-11-30T10:00:01.000000000Z: the cached snapshot diffkeeper-replay-cache-", cacheErr);
        Assert.Equal("hi\n", parts[4]); // the xattr, read through the overlay mount of the kept snapshot
        Assert.Empty(Directory.GetFileSystemEntries(outside)); // nothing was written through the symlink
        Assert.False(Directory.Exists(_tmp.Sub("containerd")));
    }

    /// <summary>The recording "app" at 2026-11-30T10:00:00Z: /data/a = "hello at 0s", and what <paramref name="more"/> adds (returns the upper directory, for more moments).</summary>
    private string RecordHelloAt0s(Action<string>? more = null)
    {
        var up = _tmp.Sub("upper");
        Posix.MkDir(up);
        Posix.MkDir(up + "/data");
        Posix.WriteFile(up + "/data/a", "hello at 0s\n"u8);
        more?.Invoke(up);
        Cli.Run("snapshot", up, "--recording", "app", "--at", "2026-11-30T10:00:00Z").ExpectOk();
        return up;
    }

    private static string ReadOr(string path) => File.Exists(path) ? File.ReadAllText(path) : "(none)";

    /// <summary>
    /// A replay under the diffkeeper runtime is itself recorded by a real diffkeeperd: a change to a file of the
    /// replayed state (in our tmpfs, a lower layer of the replay) is a copy-up ("write"), a new file a "create",
    /// and the replay's own exit state holds both.
    /// </summary>
    [SkippableFact]
    public void A_replay_under_the_diffkeeper_runtime_is_recorded_with_copy_ups_of_the_state_as_writes()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        var daemon = Binaries.Require(Binaries.Daemon);
        Binaries.Require(Binaries.Shim);
        RecordHelloAt0s();
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));

        const string script = """
            dkctr image import "$1" >&2
            "$DK_DAEMON" --store "$DK_DSTORE" --socket "$DIFFKEEPER_SOCKET" >"$DK_ERR.daemon" 2>&1 </dev/null &
            dpid=$!
            trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; dk_containerd_stop' EXIT
            for i in $(seq 1 100); do [ -S "$DIFFKEEPER_SOCKET" ] && break; sleep 0.1; done
            "$DK_CLI" --store "$DK_STORE" replay app --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" \
              --runtime io.containerd.diffkeeper.v1 --name replayed -v -- sh -c 'sleep 0.3; echo more >> /data/a; echo new > /data/n; sleep 0.5; cat /data/a' 2>"$DK_ERR"
            dk() { "$DK_CLI" --store "$DK_DSTORE" "$@"; }
            for i in $(seq 1 100); do dk ls --json 2>/dev/null | grep -q '"exit_status"' && break; sleep 0.2; done
            echo ---
            dk show replayed /data/a --at end
            dk show replayed /data/n --at end
            dk timeline replayed --json >"$DK_ERR.timeline"
            echo "tmpfs mounts: $(grep -c ' diffkeeper-replay ' /proc/self/mountinfo)"
            """;
        var err = _tmp.Sub("replay.err");
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar], new Dictionary<string, string>
        {
            ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store, ["DK_ERR"] = err, ["DK_DAEMON"] = daemon, ["DK_DSTORE"] = _tmp.Sub("daemon-store"),
            ["DIFFKEEPER_SOCKET"] = _tmp.Sub("diffkeeperd.sock"),
        });
        var diag = run.Describe() + "\nreplay: " + ReadOr(err) + "\ndaemon: " + ReadOr(err + ".daemon") + "\ntimeline: " + ReadOr(err + ".timeline");
        Assert.True(run.ExitCode == 0, diag);
        Assert.True(run.Stdout == "hello at 0s\nmore\n---\nhello at 0s\nmore\nnew\ntmpfs mounts: 0\n", diag);
        Assert.Contains("written into a tmpfs of ", ReadOr(err));
        var rows = File.ReadAllLines(err + ".timeline").Where(l => l.Length > 0).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        bool Has(string path, string kind) => rows.Any(r => r.TryGetProperty("path", out var p) && p.GetString() == path && r.GetProperty("kind").GetString() == kind);
        Assert.True(Has("data/a", "write"), diag);   // a copy-up of the replayed state, not a creation
        Assert.False(Has("data/a", "create"), diag);
        Assert.True(Has("data/n", "create"), diag);
    }

    [SkippableFact]
    public void Replay_runs_the_recorded_process_and_gives_it_a_terminal_with_t()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        Integration.Require(Integration.HasTool("script"), "needs script (bsdutils)");
        // A recording as the daemon writes it: the image and a create event whose detail is the recorded process.
        var up = _tmp.Sub("upper");
        Posix.MkDir(up);
        Posix.MkDir(up + "/work");
        Posix.WriteFile(up + "/work/state", "recorded state\n"u8);
        const long t0 = 1_795_000_000_000_000_000;
        using (var store = RecordingStore.Open(Cli.Store))
        {
            var rec = store.CreateRecording(new RecordingInfo { Name = "proc", ContainerId = "c1", Namespace = "default", Image = "localhost/dk-base:1", Start = t0 });
            store.AddEvents(rec, [new RecordedEvent
            {
                Time = t0, Kind = EventKinds.Create, Pid = 4242,
                Detail = "args: sh -c 'echo \"$0 $1\"; pwd; id -u; id -g; cat state; echo \"PATH=$PATH SECRET=$SECRET\"' x 'it'\\''s'\n" +
                         "cwd: /work\nuser: 1000:1001\nenv: PATH SECRET\ninit pid: 4242\nrootfs: overlay (upper /x)",
            }]);
            new Ingester(store).IngestTree(rec, up, t0 + 1_000_000_000);
        }
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));

        const string script = """
            dkctr image import "$1" >&2
            rp() { "$DK_CLI" --store "$DK_STORE" replay proc --address "$DK_SOCK" --namespace "$DK_NS" "$@"; }
            rp 2>"$DK_ERR"
            echo "---"
            printf 'typed\n' | script -qec "$DK_CLI --store $DK_STORE replay proc -t --address $DK_SOCK --namespace $DK_NS -- sh -c 'tty; read x; echo got:\$x'" /dev/null
            echo "---"
            # The window size follows ours: once the task runs, the pty is resized (SIGWINCH to us → ResizePty).
            export DK_SOCK
            cat >"$DK_ERR.resize" <<'SH'
            (until ctr -a "$DK_SOCK" -n "$DK_NS" tasks ls | grep -q RUNNING; do sleep 0.1; done; sleep 0.5; stty cols 123 rows 45 </dev/tty) &
            exec "$DK_CLI" --store "$DK_STORE" replay proc -t --address "$DK_SOCK" --namespace "$DK_NS" -- \
              sh -c 's=$(stty size 2>/dev/null); i=0; while [ "$(stty size 2>/dev/null)" = "$s" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; echo "size: $(stty size)"'
            SH
            script -qec "bash $DK_ERR.resize" /dev/null </dev/null
            echo "---"
            rp --rm --keep -- true || echo "both: $?"
            """;
        var err = _tmp.Sub("replay.err");
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar],
            new Dictionary<string, string> { ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store, ["DK_ERR"] = err });
        Assert.True(run.ExitCode == 0, run.Describe());
        var parts = run.Stdout.Split("---\n");
        Assert.Equal("x it's\n/work\n1000\n1001\nrecorded state\nPATH=/bin SECRET=\n", parts[0]); // args, cwd, user; env from the image
        Assert.Contains("SECRET without values", File.ReadAllText(err));
        Assert.Contains("/dev/pts/", parts[1]);   // a real terminal inside
        Assert.Contains("got:typed", parts[1]);   // our input reached it through the pty
        Assert.True(parts[2].Contains("size: 45 123"), parts[2]); // resized after the start
        Assert.Contains("both: 2", parts[3]);
    }
}
