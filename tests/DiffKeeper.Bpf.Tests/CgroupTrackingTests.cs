using System.Diagnostics;
using DiffKeeper.Bpf.Tests.Infrastructure;
using DiffKeeper.Common.Mounts;
using static DiffKeeper.Bpf.Tests.Infrastructure.CaptureSession;

namespace DiffKeeper.Bpf.Tests;

/// <summary>
/// The cgroup filter (`diffkeeper record`): a process in the host's mount namespace is tracked by its cgroup v2 id.
/// What processes in that cgroup (and their children) change comes back under its slot; what the same program
/// changes from another cgroup does not; after UntrackCgroup nothing does.
/// </summary>
public class CgroupTrackingTests
{
    private const uint CgroupSlot = 77;

    [SkippableFact]
    public void ProcessesInATrackedCgroupAreCapturedAndOthersAreNot()
    {
        using var s = Start(track: false);
        var cg = NewCgroup();
        try
        {
            ulong id = BpfEnv.Stat(cg).Ino;
            s.Capture.TrackCgroup(id, CgroupSlot);
            Assert.True(s.Capture.Attached);
            string inside = s.Scratch["inside"], child = s.Scratch["child"], outside = s.Scratch["outside"];
            // The shell enters the cgroup itself, then writes, and starts a child (dd) that inherits the cgroup.
            Sh($"echo $$ > {cg}/cgroup.procs && echo in > {inside} && dd if=/dev/zero of={child} bs=4096 count=1 2>/dev/null");
            Sh($"echo out > {outside}"); // the same program, not in the cgroup
            var drained = s.Drain();
            var e = InSlot(drained, inside);
            Assert.Equal("sh", e.Comm);
            Assert.Equal("dd", InSlot(drained, child).Comm);
            Assert.Null(Find(drained, outside));

            s.Capture.UntrackCgroup(id);
            Assert.False(s.Capture.Attached); // nothing tracked any more: detached
            File.Delete(inside);
            Sh($"echo $$ > {cg}/cgroup.procs && echo again > {inside}");
            Assert.Null(Find(s.Drain(), inside));
        }
        finally { RemoveCgroup(cg); }
    }

    [SkippableFact]
    public void WithAWatchedTreeTheKernelDropsTheCommandsChangesElsewhere()
    {
        // `diffkeeper record --dir`: the hooks walk up from a changed inode's directory and drop what lies outside
        // the watched tree, before the dirty set (docs/bpf.md). Inside: a file written, new files (through their
        // directory's change), a subdirectory, a file with a second name outside written through that name.
        // Outside: a sibling directory, another file system.
        using var s = Start(track: false);
        string watched = s.Scratch["watched"], elsewhere = s.Scratch["elsewhere"];
        Directory.CreateDirectory(watched);
        Directory.CreateDirectory(elsewhere);
        string linkedOut = s.Scratch["elsewhere/linked"], linkedIn = s.Scratch["watched/linked"];
        File.WriteAllText(linkedOut, "0");
        Sh($"ln {linkedOut} {linkedIn}");
        File.WriteAllText(s.Scratch["watched/old"], "0");
        string shm = $"/dev/shm/dk-bpf-test-{Guid.NewGuid():N}";
        var cg = NewCgroup();
        try
        {
            ulong id = BpfEnv.Stat(cg).Ino;
            var (dev, ino) = BpfEnv.Stat(watched);
            var (major, minor) = DiffKeeper.TestSupport.Libc.SplitDev(dev);
            s.Capture.TrackCgroup(id, CgroupSlot, new WatchedTree(major, minor, ino));
            var before = s.Capture.Counters;
            // Elsewhere only: 100 files created, written, renamed and removed, a directory made and removed, a file on
            // a tmpfs. Not one event may be counted.
            Sh($"echo $$ > {cg}/cgroup.procs && for i in $(seq 100); do echo $i > {elsewhere}/f$i; mv {elsewhere}/f$i {elsewhere}/g$i; done" +
               $" && rm {elsewhere}/g* && mkdir {elsewhere}/d && rmdir {elsewhere}/d && echo x > {shm} && rm {shm}");
            var after = s.Capture.Counters;
            Assert.Equal(before.Events, after.Events);
            Assert.DoesNotContain(s.Drain(), e => e.Slot == CgroupSlot);

            // Inside, and the linked file through its name elsewhere: all there.
            Sh($"echo $$ > {cg}/cgroup.procs && echo in > {watched}/a && mkdir {watched}/sub && echo b > {watched}/sub/b" +
               $" && echo more >> {watched}/old && echo more >> {linkedOut} && echo out > {elsewhere}/c");
            var drained = s.Drain();
            Assert.Equal("sh", InSlot(drained, s.Scratch["watched/old"]).Comm);
            InSlot(drained, linkedIn);
            // The new files a and sub/b come with their directories' changes (whether they have entries of their own
            // too depends on the CPU the shell ran on: see AFileBeingCreatedIsLeftToItsDirectoryForOneGeneration).
            InSlot(drained, watched, ChangeKinds.Directory | ChangeKinds.Meta);
            InSlot(drained, s.Scratch["watched/sub"], ChangeKinds.Directory | ChangeKinds.Meta);
            Assert.Null(Find(drained, s.Scratch["elsewhere/c"]));
            Assert.Null(Find(drained, elsewhere));

            // Untracked, the same slot without a tree keeps everything again.
            s.Capture.UntrackCgroup(id);
            s.Capture.TrackCgroup(id, CgroupSlot);
            Sh($"echo $$ > {cg}/cgroup.procs && echo again > {elsewhere}/c");
            InSlot(s.Drain(), s.Scratch["elsewhere/c"]);
            s.Capture.UntrackCgroup(id);
        }
        finally
        {
            RemoveCgroup(cg);
            File.Delete(shm);
        }
    }

    [SkippableFact]
    public void AFileBeingCreatedIsLeftToItsDirectoryForOneGeneration()
    {
        // A recorded command's new regular file needs no entry of its own while the generation it was created in
        // lasts (docs/bpf.md, DK_BORN): its name is a change of its directory, and the daemon reads the file after
        // the drain. A writer in the cgroup creates and writes a file, waits while the test drains, and writes it
        // again at once: that write is in a later generation and must be in the next drain, every round. (The writer
        // looks at the file's times after its first write, as the daemon's capture does: on a multigrain file system
        // a change after a look gets a new ctime, so the second write is an event though its page is still dirty.)
        using var s = Start(track: false);
        string watched = s.Scratch["watched"], p = s.Scratch.Path;
        Directory.CreateDirectory(watched);
        using var handshake = new Handshake(s.Scratch);
        const int Rounds = 20;
        File.WriteAllText(s.Scratch["writer.py"],
            "import os\n" + handshake.PythonOpen +
            $"for n in range({Rounds}):\n" +
            $"    fd = os.open('{watched}/f%d' % n, os.O_RDWR | os.O_CREAT); os.write(fd, b'first'); os.fstat(fd)\n" +
            "    os.write(r, b'1'); os.read(a, 1)\n" +
            "    os.pwrite(fd, b'second', 0); os.close(fd)\n" +
            "    os.write(r, b'2'); os.read(a, 1)\n");
        var cg = NewCgroup();
        Process? writer = null;
        try
        {
            ulong id = BpfEnv.Stat(cg).Ino;
            var (dev, ino) = BpfEnv.Stat(watched);
            var (major, minor) = DiffKeeper.TestSupport.Libc.SplitDev(dev);
            s.Capture.TrackCgroup(id, CgroupSlot, new WatchedTree(major, minor, ino));
            writer = Process.Start(new ProcessStartInfo("sh", ["-c", $"echo $$ > {cg}/cgroup.procs && exec python3 {p}/writer.py"]))!;
            int leftToDirectory = 0;
            for (int n = 0; n < Rounds; n++)
            {
                string f = s.Scratch[$"watched/f{n}"];
                handshake.Wait();
                var first = s.Drain();
                InSlot(first, watched, ChangeKinds.Directory | ChangeKinds.Meta); // the name: always
                if (Find(first, f) is null) leftToDirectory++;
                handshake.Go();
                handshake.Wait();
                // Its page is still dirty: the write comes as the file's new mtime and ctime (Meta), which makes the
                // daemon read it.
                Assert.True(Find(s.Drain(), f) is not null, $"round {n}: the write after the drain is in no drain");
                handshake.Go();
            }
            Assert.True(writer.WaitForExit(10_000) && writer.ExitCode == 0, "the writer failed");
            // Meaningful only if the creation was often left to the directory (the writer stayed on its CPU).
            Assert.True(leftToDirectory >= 5, $"only {leftToDirectory} of {Rounds} new files were left to their directory");
            s.Capture.UntrackCgroup(id);
        }
        finally
        {
            if (writer is { HasExited: false }) writer.Kill();
            writer?.Dispose();
            RemoveCgroup(cg);
        }
    }

    /// <summary>A new cgroup v2 below the test's own (skips when cgroup v2 is not mounted).</summary>
    private static string NewCgroup()
    {
        var mount = MountTable.Read().Where(m => m.FsType == "cgroup2").Select(m => m.MountPoint).FirstOrDefault();
        Integration.Require(mount != null, "cgroup v2 mounted");
        var own = File.ReadLines("/proc/self/cgroup").First(l => l.StartsWith("0::", StringComparison.Ordinal))[3..].TrimEnd('/');
        var cg = Path.Join(mount, own, "dk-bpf-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(cg);
        return cg;
    }

    /// <summary>Removes the cgroup once the processes moved into it have exited.</summary>
    private static void RemoveCgroup(string cg)
    {
        for (int i = 0; i < 50 && Directory.Exists(cg); i++)
        {
            try { Directory.Delete(cg); } catch (IOException) { Thread.Sleep(20); }
        }
    }

    private static DirtyInode InSlot(List<DirtyInode> drained, string path, ChangeKinds kinds = ChangeKinds.Data)
    {
        var e = Find(drained, path);
        Assert.True(e is not null, $"no dirty-set entry for {path}; drained: {Describe(drained)}");
        Assert.True((e.Value.Kinds & kinds) == kinds, $"{path}: kinds {e.Value.Kinds}");
        Assert.Equal(CgroupSlot, e.Value.Slot);
        return e.Value;
    }

    private static void Sh(string script)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", script]) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"sh -c '{script}' failed: {err}");
    }
}
