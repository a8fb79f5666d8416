using DiffKeeper.Bpf.Tests.Infrastructure;
using static DiffKeeper.Bpf.Tests.Infrastructure.CaptureSession;

namespace DiffKeeper.Bpf.Tests;

/// <summary>
/// The real diffkeeper.bpf.o in the real kernel, with a shell in its own mount namespace standing in for a
/// container: what it changes must come back from Drain as the right inodes, kinds, processes and times; what
/// anything else changes must not.
/// </summary>
public class ChangeCaptureTests
{
    [SkippableFact]
    public void WritesAreReportedAsDataWithTheWritingProcessAndTime()
    {
        using var s = Start();
        string a = s.Scratch["a"], b = s.Scratch["b"];
        long before = NowNs();
        s.Shell.Exec($"echo hello > {a}"); // a shell builtin: written by the shell itself
        int ddPid = int.Parse(s.Shell.Exec($"dd if=/dev/zero of={b} bs=4096 count=4 2>/dev/null & echo $!; wait").Trim());
        long after = NowNs();

        var drained = s.Drain();
        var ea = Require(drained, a, ChangeKinds.Data);
        Assert.Equal(s.Shell.Pid, ea.Pid);
        Assert.Equal("sh", ea.Comm);
        var eb = Require(drained, b, ChangeKinds.Data);
        Assert.Equal(ddPid, eb.Pid);
        Assert.Equal("dd", eb.Comm);
        foreach (var e in new[] { ea, eb })
        {
            // boot-time stamps converted to the wall clock: inside the window of the writes (1 ms of slack for rounding)
            Assert.InRange(e.FirstRealtimeNs, before - 1_000_000, after + 1_000_000);
            Assert.InRange(e.LastRealtimeNs, e.FirstRealtimeNs, after + 1_000_000);
        }
        Assert.True(ea.LastRealtimeNs < eb.FirstRealtimeNs, "a was written before b");
        // creating both changed their directory
        var dir = Require(drained, s.Scratch.Path, ChangeKinds.Directory | ChangeKinds.Meta);
        Assert.Equal("dd", dir.Comm);
    }

    [SkippableFact]
    public void NamespaceOperationsMarkTheParentDirectoryAndTheInode()
    {
        using var s = Start();
        // set up by this (untracked) process: nothing of it may appear
        foreach (var d in new[] { "create", "unlink", "rename", "mkdir", "rmdir/gone", "symlink", "link" })
            Directory.CreateDirectory(s.Scratch[d]);
        File.WriteAllText(s.Scratch["unlink/victim"], "v");
        File.WriteAllText(s.Scratch["rename/from"], "r");
        File.WriteAllText(s.Scratch["link/target"], "t");
        var victim = BpfEnv.Stat(s.Scratch["unlink/victim"]);
        Assert.DoesNotContain(s.Drain(), e => e.Pid == Environment.ProcessId);

        string p = s.Scratch.Path;
        // the unlinked inode itself (its link count, so its ctime, changes); checked alone because ext4 hands a
        // freed inode number to the next new inode at once: after the mkdir below, (dev, ino) may name another file
        s.Shell.Exec($"rm {p}/unlink/victim");
        var unlinked = s.Drain();
        Assert.Equal("rm", Find(unlinked, victim.Dev, victim.Ino)?.Comm);
        Assert.Equal("rm", Require(unlinked, s.Scratch["unlink"], ChangeKinds.Directory | ChangeKinds.Meta).Comm);

        s.Shell.Exec($"touch {p}/create/new && mv {p}/rename/from {p}/rename/to && mkdir {p}/mkdir/sub " +
                     $"&& rmdir {p}/rmdir/gone && ln -s ../link/target {p}/symlink/sym && ln {p}/link/target {p}/link/hard");
        var drained = s.Drain();

        var kinds = ChangeKinds.Directory | ChangeKinds.Meta;
        Assert.Equal("touch", Require(drained, s.Scratch["create"], kinds).Comm);
        Assert.Equal("mv", Require(drained, s.Scratch["rename"], kinds).Comm);
        Assert.Equal("mkdir", Require(drained, s.Scratch["mkdir"], kinds).Comm);
        Assert.Equal("rmdir", Require(drained, s.Scratch["rmdir"], kinds).Comm);
        Assert.Equal("ln", Require(drained, s.Scratch["symlink"], kinds).Comm);
        Assert.Equal("ln", Require(drained, s.Scratch["link"], kinds).Comm);
        // the inodes themselves: new ones, the renamed one (ctime), the linked one (link count)
        Require(drained, s.Scratch["create/new"], ChangeKinds.Meta);
        Require(drained, s.Scratch["mkdir/sub"], ChangeKinds.Directory);
        Require(drained, s.Scratch["symlink/sym"], ChangeKinds.Meta);
        Assert.Equal("mv", Require(drained, s.Scratch["rename/to"], ChangeKinds.Meta).Comm);
        Assert.Equal("ln", Require(drained, s.Scratch["link/target"], ChangeKinds.Meta).Comm);
        // the root of the scratch dir was not touched by the shell
        Assert.Null(Find(drained, s.Scratch.Path));
    }

    [SkippableFact]
    public void AttributeChangesAreMetaWithoutData()
    {
        using var s = Start();
        foreach (var f in new[] { "chmod", "chown", "xattr", "truncate" }) WriteClean(s.Scratch[f], new byte[10000]);
        s.Drain();

        string p = s.Scratch.Path;
        s.Shell.Exec($"chmod 600 {p}/chmod && chown 1:1 {p}/chown && truncate -s 4096 {p}/truncate");
        s.Shell.Exec($"python3 -c \"import os; os.setxattr('{p}/xattr', 'user.dk', b'v')\"");
        var drained = s.Drain();

        // (truncate to a page boundary: a cut inside a page zeroes its tail, which dirties that page: Data, rightly)
        foreach (var (f, comm) in new[] { ("chmod", "chmod"), ("chown", "chown"), ("xattr", "python3"), ("truncate", "truncate") })
        {
            var e = Require(drained, s.Scratch[f], ChangeKinds.Meta);
            Assert.Equal(comm, e.Comm);
            Assert.False(e.Kinds.HasFlag(ChangeKinds.Data), $"{f}: {e.Kinds}: no data page was written");
        }
    }

    [SkippableFact]
    public void MmapStoresAreReportedAsData()
    {
        using var s = Start();
        string f = s.Scratch["mapped"];
        WriteClean(f, new byte[3 * 4096]); // written back: its pages are clean, so a store must dirty one again
        s.Drain();

        s.Shell.Exec($"python3 -c \"import mmap; f=open('{f}','r+b'); m=mmap.mmap(f.fileno(),0); m[5000:5004]=b'dk!!'; m.flush(); m.close()\"");
        var drained = s.Drain();
        var e = Require(drained, f, ChangeKinds.Data);
        Assert.Equal("python3", e.Comm);
        Assert.Equal("dk!!", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(f), 5000, 4));
    }

    [SkippableFact]
    public void DirectIoWritesBypassThePageCacheAndShowAsMeta()
    {
        // O_DIRECT dirties no page, so no Data; the write still sets mtime/ctime: a regular file with Meta must be
        // re-read by the daemon, not only one with Data. Like any write, it sets no new ctime in the same tick as
        // the last change unless someone looked at the time since (measured: without the stat below, nothing at
        // all is reported here): the daemon's stat after a drain is what makes it visible (docs/bpf.md).
        using var s = Start();
        string f = s.Scratch["direct"];
        WriteClean(f, new byte[8192]);
        s.Drain();
        BpfEnv.Stat(f);
        s.Shell.Exec($"dd if=/dev/urandom of={f} bs=4096 count=1 oflag=direct conv=notrunc 2>/dev/null");
        var e = Require(s.Drain(), f, ChangeKinds.Meta);
        Assert.Equal("dd", e.Comm);
        Assert.False(e.Kinds.HasFlag(ChangeKinds.Data), e.Kinds.ToString());
    }

    [SkippableFact]
    public void OverlayChangesAreReportedOnTheUpperInodes()
    {
        using var s = Start();
        foreach (var d in new[] { "lower/dir", "upper", "work", "merged" }) Directory.CreateDirectory(s.Scratch[d]);
        File.WriteAllText(s.Scratch["lower/image-file"], "from the image\n");
        File.WriteAllText(s.Scratch["lower/doomed"], "deleted by the container\n");
        string p = s.Scratch.Path, m = s.Scratch["merged"];
        s.Shell.Exec($"mount -t overlay overlay -o lowerdir={p}/lower,upperdir={p}/upper,workdir={p}/work {m}");
        string overlayDev = s.Shell.Exec($"stat -c %d {m}").Trim();
        s.Drain();

        s.Shell.Exec($"echo created > {m}/new && echo edited >> {m}/image-file && rm {m}/doomed && echo nested > {m}/dir/file");
        var drained = s.Drain();

        Assert.Equal("sh", Require(drained, s.Scratch["upper/new"], ChangeKinds.Data).Comm);
        Require(drained, s.Scratch["upper/image-file"], ChangeKinds.Data); // the copy-up
        Require(drained, s.Scratch["upper/dir/file"], ChangeKinds.Data);
        Require(drained, s.Scratch["upper"], ChangeKinds.Directory | ChangeKinds.Meta); // create, copy-up, whiteout
        Require(drained, s.Scratch["upper/dir"], ChangeKinds.Directory | ChangeKinds.Meta);
        // the whiteout left for the deleted image file is reported (a 0:0 character device in the upper dir)
        Require(drained, s.Scratch["upper/doomed"], ChangeKinds.Meta);
        Assert.DoesNotContain(drained, e => e.Dev.ToString() == overlayDev); // never overlay's own inodes
        // the lower layer was only read
        Assert.Null(Find(drained, s.Scratch["lower/image-file"]));
    }

    [SkippableFact]
    public void RepeatedWritesToOneFileCoalesceIntoOneEntry()
    {
        using var s = Start();
        string f = s.Scratch["log"];
        var before = s.Capture.Counters;
        s.Shell.Exec($"dd if=/dev/zero of={f} bs=4096 count=64 2>/dev/null; for i in 1 2 3 4 5; do sleep 0.01; echo line >> {f}; done");
        var drained = s.Drain();
        var after = s.Capture.Counters;

        var e = Require(drained, f, ChangeKinds.Data | ChangeKinds.Meta);
        // dd's 64 pages within a millisecond mostly take the coalesced path (the entry left as is); the appends 10 ms
        // apart each update the entry
        ulong coalesced = after.Coalesced - before.Coalesced;
        Assert.True(e.Merged + coalesced >= 64, $"64 pages dirtied and 5 appends, merged {e.Merged}, coalesced {coalesced}");
        Assert.True(coalesced > 0, $"dd's burst took the coalesced path: counters {before} -> {after}");
        Assert.True(e.Merged >= 5, $"5 appends 10 ms apart each update the entry, merged {e.Merged}");
        Assert.Equal("sh", e.Comm); // the last writer was the shell's echo
        Assert.True(after.Merged - before.Merged >= e.Merged, $"counters {before} -> {after}");
        // every event is in an entry, or coalesced into one
        Assert.Equal(after.Events - before.Events, (ulong)drained.Sum(x => x.Merged + 1) + coalesced);
        Assert.Equal(0UL, after.Lost);
    }

    [SkippableFact]
    public void AStatAfterTheDrainMakesTheNextWriteAnEventEvenInTheSameTick()
    {
        // The protocol docs/bpf.md gives the daemon: a write to a page that is still dirty, in the same timestamp
        // tick as the last ctime change, raises no event; but on a multigrain file system a stat() marks the ctime
        // as seen, so the next change takes a fresh fine-grained ctime, which is an event. 20 rounds: most of them
        // land in the same tick (a round trip to the shell takes ~1 ms; a tick is 1–10 ms).
        using var s = Start();
        string f = s.Scratch["appended"];
        s.Shell.Exec($"echo 0 > {f}");
        s.Drain();
        for (int i = 1; i <= 20; i++)
        {
            s.Shell.Exec($"echo {i} >> {f}");
            BpfEnv.Stat(f);
            s.Drain();
            s.Shell.Exec($"echo {i}b >> {f}");
            Require(s.Drain(), f, ChangeKinds.Meta);
        }
    }

    [SkippableFact]
    public void DrainingWhileTheContainerWritesLosesNoEvent()
    {
        // The replace-under-the-bucket-lock design (docs/bpf.md): an event merging into an entry that the drain is
        // taking at that instant goes to this drain or the next one. Four files, each write followed by an fstat
        // (so every write is an event), drained as fast as possible meanwhile: every counted event must be in
        // exactly one drained entry.
        using var s = Start();
        string p = s.Scratch.Path;
        var script = $"import os\nfds=[os.open('{p}/c%d' % i, os.O_RDWR|os.O_CREAT) for i in range(4)]\n" +
                     "for n in range(50000):\n fd=fds[n % 4]; os.pwrite(fd, b'x'*64, 0); os.fstat(fd)\n";
        File.WriteAllText(s.Scratch["writer.py"], script);
        var drained = new List<DirtyInode>();
        using var done = new ManualResetEventSlim();
        var drainer = Task.Run(() => { while (!done.IsSet) s.Capture.Drain(drained); });
        try { s.Shell.Exec($"python3 {p}/writer.py"); }
        finally { done.Set(); drainer.Wait(); }
        s.Capture.Drain(drained);

        var c = s.Capture.Counters;
        Assert.Equal(0UL, c.Lost);
        Assert.True(c.Events >= 50000, $"events {c.Events}");
        Assert.Equal(c.Events, (ulong)drained.Sum(e => (long)e.Merged + 1) + c.Coalesced);
        Assert.True(drained.Count(e => e.Comm == "python3") > 4, $"drained mid-run: {drained.Count} entries"); // the race happened
    }

    [SkippableFact]
    public void AWriteRightAfterADrainIsInTheNextDrainThoughItCouldBeCoalesced()
    {
        // The coalescing caches (docs/bpf.md, dk_seen): a writer's repeated event on an inode within 1 ms of its last
        // full update leaves the dirty set alone, because the entry is still there. A drain removes it, so the next
        // event must make a new entry however soon it comes. A python writer changes one file, waits while the
        // test drains, and changes it again at once (well within 1 ms of the first change, in most rounds): the
        // second change must be in the next drain, every round.
        using var s = Start();
        string p = s.Scratch.Path, file = s.Scratch["f"];
        using var handshake = new Handshake(s.Scratch);
        const int Rounds = 30;
        File.WriteAllText(s.Scratch["writer.py"],
            "import os, time\n" +
            $"fd = os.open('{file}', os.O_RDWR | os.O_CREAT)\n" +
            handshake.PythonOpen +
            $"for n in range({Rounds}):\n" +
            "    os.pwrite(fd, b'a%d' % n, 0); os.fstat(fd); t = time.monotonic_ns()\n" +
            "    os.write(r, b'1'); os.read(a, 1)\n" +
            "    os.pwrite(fd, b'b%d' % n, 0); gap = time.monotonic_ns() - t; os.fstat(fd)\n" +
            "    os.write(r, b'%08d' % (gap // 1000)); os.read(a, 1)\n");
        s.Shell.Exec($"python3 {p}/writer.py > {p}/writer.log 2>&1 &");
        handshake.Wait(0); // opens the fifos: the writer has created the file
        var (dev, ino) = BpfEnv.Stat(file);
        int quick = 0;
        for (int n = 0; n < Rounds; n++)
        {
            handshake.Wait();
            Assert.NotNull(Find(s.Drain(), dev, ino)); // the first change
            handshake.Go();
            long micros = long.Parse(System.Text.Encoding.ASCII.GetString(handshake.Wait(8)));
            if (micros < 900) quick++;
            var second = Find(s.Drain(), dev, ino);
            Assert.True(second is not null, $"round {n}: the change {micros} µs after the drained one is in no drain");
            handshake.Go();
        }
        // Meaningful only if the second change often came within the coalescing window.
        Assert.True(quick >= 5, $"only {quick} of {Rounds} second changes came within 0.9 ms of the first");
    }

    [SkippableFact]
    public void UntrackedNamespacesAreNotCaptured()
    {
        using var s = Start();
        using var other = new NamespacedShell(); // another "container", not tracked
        string mine = s.Scratch["tracked"], theirs = s.Scratch["untracked"], ours = s.Scratch["test-process"];
        other.Exec($"echo x > {theirs}");
        File.WriteAllText(ours, "written by the test process, in the host's namespace");
        s.Shell.Exec($"echo x > {mine}");
        var drained = s.Drain();

        Require(drained, mine, ChangeKinds.Data); // capture works ...
        Assert.Null(Find(drained, theirs)); // ... and sees nothing of the others
        Assert.Null(Find(drained, ours));
        Assert.DoesNotContain(drained, e => e.Pid == Environment.ProcessId || e.Pid == other.Pid);
    }

    [SkippableFact]
    public void UntrackStopsCaptureAndDetachesWhenNothingIsTracked()
    {
        using var s = Start(track: false);
        Assert.False(s.Capture.Attached);
        Assert.Empty(s.Capture.AttachedTracepoints);
        s.Shell.Exec($"echo 0 > {s.Scratch["before-track"]}");
        Assert.Empty(s.Drain());

        s.Capture.Track(s.Shell.MountNamespace, Slot);
        Assert.True(s.Capture.Attached);
        Assert.Contains("writeback_dirty_folio", s.Capture.AttachedTracepoints);
        s.Shell.Exec($"echo 1 > {s.Scratch["while-tracked"]}");
        Require(s.Drain(), s.Scratch["while-tracked"], ChangeKinds.Data);

        s.Capture.Untrack(s.Shell.MountNamespace);
        Assert.False(s.Capture.Attached);
        s.Shell.Exec($"echo 2 > {s.Scratch["after-untrack"]}");
        Assert.Empty(s.Drain());

        // a second namespace keeps the programs attached while the first one goes
        using var second = new NamespacedShell();
        s.Capture.Track(s.Shell.MountNamespace, Slot);
        s.Capture.Track(second.MountNamespace, Slot + 1);
        s.Capture.Untrack(s.Shell.MountNamespace);
        Assert.True(s.Capture.Attached);
        s.Shell.Exec($"echo 3 > {s.Scratch["first-untracked"]}");
        second.Exec($"echo 3 > {s.Scratch["second-tracked"]}");
        var drained = s.Drain();
        Assert.Null(Find(drained, s.Scratch["first-untracked"]));
        Assert.Equal(Slot + 1, Find(drained, s.Scratch["second-tracked"])?.Slot);
    }

    [SkippableFact]
    public void WithALingerTheProgramsStayAttachedUntilIdleThatLong()
    {
        using var s = Start(track: false);
        s.Capture.DetachLinger = TimeSpan.FromMilliseconds(300);
        s.Capture.Track(s.Shell.MountNamespace, Slot);
        s.Capture.Untrack(s.Shell.MountNamespace);
        Assert.True(s.Capture.Attached); // the last Untrack no longer detaches ...
        Assert.False(s.Capture.DetachIfIdle()); // ... nor does a call before the linger is over
        s.Shell.Exec($"echo 1 > {s.Scratch["untracked-but-attached"]}");
        Assert.Null(Find(s.Drain(), s.Scratch["untracked-but-attached"])); // untracked all the same

        // tracked again within the linger: still attached, and never detached while tracked
        s.Capture.Track(s.Shell.MountNamespace, Slot);
        Thread.Sleep(400);
        Assert.False(s.Capture.DetachIfIdle());
        s.Shell.Exec($"echo 2 > {s.Scratch["tracked-again"]}");
        Require(s.Drain(), s.Scratch["tracked-again"], ChangeKinds.Data);

        s.Capture.Untrack(s.Shell.MountNamespace);
        Thread.Sleep(400);
        Assert.True(s.Capture.DetachIfIdle());
        Assert.False(s.Capture.Attached);
        Assert.Empty(s.Capture.AttachedTracepoints);
    }

    [SkippableFact]
    public void AFullDirtySetCountsEveryLostEvent()
    {
        const int capacity = 16, files = 64;
        using var s = Start(dirtySetCapacity: capacity);
        Assert.Equal(capacity, s.Capture.DirtySetCapacity);
        s.Shell.Exec($"mkdir {s.Scratch["many"]}; i=0; while [ $i -lt {files} ]; do echo x > {s.Scratch["many"]}/f$i; i=$((i+1)); done");
        var drained = s.Drain();
        var c = s.Capture.Counters;

        Assert.Equal(capacity, drained.Count);
        // 65 inodes changed (64 files + their directory), at most 16 fit: each of the others lost >= 1 event
        Assert.True(c.Lost >= files + 1 - capacity, $"lost {c.Lost}");
        Assert.Equal(c.Events, (ulong)drained.Sum(e => e.Merged + 1) + c.Lost + c.Coalesced);

        // drained, the set has room again
        s.Shell.Exec($"echo y > {s.Scratch["after"]}");
        Require(s.Drain(), s.Scratch["after"], ChangeKinds.Data);
        Assert.Equal(c.Lost, s.Capture.Counters.Lost);
    }

    [SkippableFact]
    public void OnKernelsWithoutTimestampTracepointsTheMarkInodeDirtyFallbackReportsMeta()
    {
        using var s = Start(track: false);
        s.Capture.UseFallbackHooks = true;
        s.Capture.Track(s.Shell.MountNamespace, Slot);
        Assert.Equal(["writeback_dirty_folio", "writeback_mark_inode_dirty"], s.Capture.AttachedTracepoints.Order());
        WriteClean(s.Scratch["f"], new byte[100]);
        s.Drain();
        s.Shell.Exec($"chmod 600 {s.Scratch["f"]} && echo x > {s.Scratch["g"]}");
        var drained = s.Drain();
        Assert.Equal("chmod", Require(drained, s.Scratch["f"], ChangeKinds.Meta).Comm);
        Require(drained, s.Scratch["g"], ChangeKinds.Data);
    }

    [SkippableFact]
    public void DisposeUnloadsTheProgramsAndTheirLinks()
    {
        Integration.Require(Integration.HasTool("bpftool"), "bpftool");
        IReadOnlyList<uint> ids;
        using (var s = Start())
        {
            ids = s.Capture.ProgramIds();
            Assert.Equal(5, ids.Count);
            foreach (var id in ids) Assert.Contains("tracing", BpfEnv.Run("bpftool", "prog", "show", "id", id.ToString())); // tp_btf programs
            string links = BpfEnv.Run("bpftool", "link", "list");
            Assert.Contains($"prog {ids[0]}", links);
        }
        // the kernel frees a program after an RCU grace period: give it a moment
        foreach (var id in ids)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (Exists(id) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Assert.False(Exists(id), $"program {id} is still loaded after Dispose");
        }
        string after = BpfEnv.Run("bpftool", "link", "list");
        foreach (var id in ids) Assert.DoesNotContain($"prog {id}\n", after + "\n");
    }

    private static bool Exists(uint programId)
    {
        try { BpfEnv.Run("bpftool", "prog", "show", "id", programId.ToString()); return true; }
        catch (InvalidOperationException) { return false; }
    }

    private static void WriteClean(string path, byte[] content)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        fs.Write(content);
        fs.Flush(flushToDisk: true); // fsync: the pages are written back and clean
    }
}
