using DiffKeeper.Bpf;
using DiffKeeper.Recorder.Metrics;
using DiffKeeper.Recorder.Native;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>
/// Turns one frame's dirty inodes of one container into versions and change events:
/// <list type="number">
/// <item>dirty directories are rescanned (getdents, inodes included): a name that is new is captured (a new
///   directory with everything in it), a name that is gone is recorded deleted, and an inode that left one name and
///   appeared under another in the same frame is a rename;</item>
/// <item>dirty files are resolved to their path(s) through the inode map and captured;</item>
/// <item>files captured in the previous frame are re-stat'ed once and captured again when size, mtime or ctime
///   moved (a write to a still-dirty page in the same timestamp tick raises no new kernel event).</item>
/// </list>
/// One version per path per frame; a version's time is the change's time from the kernel. Runs on the frame
/// thread only, under the container's write lock.
/// <para><b>Busy large files.</b> A regular file of <see cref="BusyFileFloor"/> or more that changed in this frame
/// and in the previous one too (a change: a kernel event for it, or its size, mtime or ctime moved since the daemon
/// last looked at it) is still being written — growing, or rewritten in place (mmap, pwrite). Reading it in every
/// frame would re-read and re-hash all of it each time on the other core while the writer writes it (work quadratic
/// in a growing file's size; for a 64 MiB mmap rewrite, memory bandwidth and caches the writer pays for: +16 % of
/// its own CPU). Its capture waits until a frame finds it unchanged (no event, lstat as last looked: the writer
/// paused or finished; the version then gets the file's mtime), or it has waited <see cref="MaxBusyWaitNs"/> (it
/// is then read, and waits again), or the exit state. Its first sight reads at once (a file made at its size by
/// ftruncate and then mapped is read before the writer's pages exist, which costs the writer nothing). Its change
/// events are recorded in every frame as usual. Live captures only: renames, the baseline and the exit state read
/// at once.</para>
/// </summary>
internal sealed class FrameProcessor(RecordingStore store, Ingester ingester, long maxLiveFileSize, DaemonMetrics metrics, Action<string> log)
{
    /// <summary>Smallest file whose live capture waits while it is busy: re-reading 4 MiB a frame costs little.</summary>
    public const long BusyFileFloor = 4L << 20;
    /// <summary>Longest a busy file's capture waits: one version a second at least while it keeps changing.</summary>
    public const long MaxBusyWaitNs = 1_000_000_000;

    /// <summary>A dirty inode of this frame, merged over every entry the drain returned for it.</summary>
    private sealed class Change
    {
        public ulong Ino;
        public ChangeKinds Kinds;
        public long Time;
        public int? Pid;
        public string? Comm;
    }

    private sealed class Frame(TrackedContainer c, long now)
    {
        public TrackedContainer C { get; } = c;
        public long Now { get; } = now;
        /// <summary>This container's frame number (<see cref="TrackedContainer.FrameSeq"/>).</summary>
        public long Seq { get; } = c.FrameSeq;
        /// <summary>The state at a command's exit: read in full, the live capture limit does not apply.</summary>
        public bool ExitState { get; init; }
        public HashSet<UpperNode> Captured { get; } = [];
        /// <summary>Files looked at in this frame whose capture waits because they are busy (re-checked next frame).</summary>
        public HashSet<UpperNode> Waiting { get; } = [];
        public List<RecordedEvent> Events { get; } = [];
        /// <summary>Bytes read and ticks spent in IngestPath in this frame (the slow-frame log line).</summary>
        public long BytesRead, IngestTicks;
        /// <summary>Versions were written with the recording's summary left unsaved (deferSave): Finish saves it once.</summary>
        public bool SummaryUnsaved;
        public List<(UpperNode Node, Change Why)> Removed { get; } = [];
        public List<(UpperNode Parent, DirectoryEntry Entry, Change Why)> Added { get; } = [];
        /// <summary>This frame's changes by inode: who changed a directory found new (its entries were made by it).</summary>
        public Dictionary<ulong, Change> Changes { get; init; } = [];
    }

    /// <summary>What one Process call did, in numbers (formatted only when the daemon logs a slow frame).</summary>
    public readonly record struct Summary(int Captured, long BytesRead, long IngestTicks, int Waiting, int Events, double EventsMs)
    {
        public override string ToString() =>
            $"{Captured} captured ({BytesRead} bytes read, ingest {IngestTicks * 1000.0 / System.Diagnostics.Stopwatch.Frequency:0.0} ms), " +
            $"{Waiting} waiting, {Events} events ({EventsMs:0.0} ms)";
    }

    /// <summary>What the last Process call did (the daemon logs it with a slow frame).</summary>
    public Summary LastFrame { get; private set; }

    /// <summary>Processes the frame's changes of one container (possibly none: re-checks still run).</summary>
    public void Process(TrackedContainer c, IReadOnlyList<DirtyInode> items, long now)
    {
        var tree = c.Tree;
        var changes = new Dictionary<ulong, Change>();
        foreach (var d in items)
        {
            if (d.Dev != tree.Dev) continue; // another file system (a volume, the overlay's own inodes): not the upper layer
            if (!changes.TryGetValue(d.Ino, out var ch)) changes[d.Ino] = ch = new Change { Ino = d.Ino, Time = long.MinValue };
            ch.Kinds |= d.Kinds;
            if (d.LastRealtimeNs >= ch.Time)
            {
                ch.Time = d.LastRealtimeNs;
                ch.Pid = d.Pid > 0 ? d.Pid : null;
                ch.Comm = string.IsNullOrEmpty(d.Comm) ? null : d.Comm;
            }
        }
        c.FrameSeq++;
        var frame = new Frame(c, now) { Changes = changes };
        foreach (var ch in changes.Values)
        {
            if (ch.Time > now || ch.Time <= 0) ch.Time = now; // never a version from the future
        }

        // 1. Directories whose entries changed.
        foreach (var ch in changes.Values)
        {
            if ((ch.Kinds & ChangeKinds.Directory) == 0) continue;
            foreach (var node in tree.Find(ch.Ino).ToArray())
                if (node.IsDir) ScanDirectory(frame, node, ch);
        }
        ApplyDirectoryChanges(frame);

        // 2. Files whose data or metadata changed (and directories whose own metadata changed).
        foreach (var ch in changes.Values)
        {
            if ((ch.Kinds & (ChangeKinds.Data | ChangeKinds.Meta)) == 0) continue;
            // Not in the map even after the rescans: the overlay's work directory, or a name already gone again.
            if (!tree.Knows(ch.Ino)) { metrics.UnresolvedInodes.Add(1); continue; }
            foreach (var node in tree.Find(ch.Ino).ToArray())
            {
                if (frame.Captured.Contains(node) || frame.Waiting.Contains(node)) continue;
                if (node.IsDir)
                {
                    // A directory's Meta also fires for every entry change in it (handled by the rescan): only a
                    // change of its own mode or owner is a change of the directory.
                    if (!Dirents.TryLstat(tree.Abs(node.Path), out var now1) || now1.Inode != node.Ino) continue;
                    if ((now1.Mode & 0xFFF) == (node.Last.Mode & 0xFFF) && now1.Uid == node.Last.Uid && now1.Gid == node.Last.Gid) continue;
                }
                var before = node.Last;
                if (!Capture(frame, node, ch.Time, out var st, mayWait: true, changeEvent: true)) continue;
                // Data with a smaller size is a truncate inside a page: it dirties the page whose tail it zeroes when
                // that page had been written back already (a `sync` anywhere on the node), and not when it was still dirty.
                string? kind = (ch.Kinds & ChangeKinds.Data) != 0 && !node.IsDir
                    ? (before.Inode != 0 && st.Size < before.Size ? "truncate" : "write")
                    : Classify(before, st);
                if (kind != null) AddEvent(frame, kind, node.Path, ch);
            }
        }

        // 3. Re-check what the previous frame captured, or left waiting because it was busy (no event for it in this
        //    frame: it is read now unless its lstat moved since the last look).
        foreach (var node in c.Recheck)
        {
            if (frame.Captured.Contains(node) || frame.Waiting.Contains(node) || !tree.Find(node.Ino).Contains(node)) continue;
            if (!Dirents.TryLstat(tree.Abs(node.Path), out var st) || st.Inode != node.Ino) continue;
            bool waited = node.WaitingSince != 0;
            if (!waited && st.Size == node.Last.Size && st.MtimeNs == node.Last.MtimeNs && st.CtimeNs == node.Last.CtimeNs) continue;
            // The file moved on after it was read: its mtime says when (clamped to this frame and after the last version).
            long t = Math.Clamp(st.MtimeNs, node.LastVersionTime + 1, Math.Max(now, node.LastVersionTime + 1));
            if (Capture(frame, node, t, out _, mayWait: true) && frame.Captured.Contains(node) && !waited) metrics.Rechecked.Add(1);
        }
        Finish(frame);
    }

    /// <summary>The frame's files (captured or waiting) are re-checked in the next one; its change events are written in one batch.</summary>
    private void Finish(Frame frame)
    {
        frame.C.Recheck = [.. frame.Captured.Where(n => !n.IsDir), .. frame.Waiting.Where(n => !frame.Captured.Contains(n))];
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        if (frame.Events.Count > 0)
        {
            store.AddEvents(frame.C.Recording, frame.Events); // saves the recording's summary too
            metrics.ChangeEvents.Add(frame.Events.Count);
        }
        else if (frame.SummaryUnsaved) store.SaveRecording(frame.C.Recording);
        LastFrame = new Summary(frame.Captured.Count, frame.BytesRead, frame.IngestTicks, frame.Waiting.Count, frame.Events.Count,
            System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }

    /// <summary>
    /// Walks the whole upper tree as if every directory and file were dirty: after lost kernel events, the state is
    /// made equal to the upper directory again (new names captured, vanished names deleted, changed files captured).
    /// A file whose size, times and mode are unchanged is skipped, unless it was captured after
    /// <paramref name="rereadWrittenAfter"/>: a store through a shared mapping into a page that is still dirty
    /// changes the file without an event, a new mtime or ctime (the kernel updates them at the page's first write
    /// fault only), so a file the command wrote is read again for the state at exit (ingest keeps no new version
    /// when its content is the same). <paramref name="exitState"/>: the state at a command's exit (`record`), for
    /// which files over the live capture limit are read too (a container's comes from its spooled exit state).
    /// </summary>
    public void FullRescan(TrackedContainer c, long now, long rereadWrittenAfter = long.MaxValue, bool exitState = false)
    {
        var frame = new Frame(c, now) { ExitState = exitState };
        var why = new Change { Time = now };
        var nodes = UpperTree.Walk(c.Tree.Root).ToList();
        foreach (var node in nodes)
        {
            if (node != c.Tree.Root && !c.Tree.Find(node.Ino).Contains(node)) continue; // went with a removed parent
            if (node.IsDir) ScanDirectory(frame, node, why);
        }
        ApplyDirectoryChanges(frame);
        foreach (var node in nodes)
        {
            if (node.IsDir || frame.Captured.Contains(node) || !c.Tree.Find(node.Ino).Contains(node)) continue;
            if (!Dirents.TryLstat(c.Tree.Abs(node.Path), out var st)) continue;
            if (st.Size == node.Last.Size && st.MtimeNs == node.Last.MtimeNs && st.CtimeNs == node.Last.CtimeNs && st.Mode == node.Last.Mode
                && (node.LastVersionTime <= rereadWrittenAfter || !st.IsRegular)) continue;
            var before = node.Last;
            if (Capture(frame, node, now, out st) && Classify(before, st) is { } kind) AddEvent(frame, kind, node.Path, why);
        }
        Finish(frame);
    }

    /// <summary>
    /// Builds the map of a container's upper directory as it is now and captures every entry as the state at
    /// <paramref name="time"/> (at Track: usually nothing, the container has not run yet).
    /// </summary>
    public void Baseline(TrackedContainer c, long time)
    {
        var frame = new Frame(c, time);
        var why = new Change { Time = time };
        ScanDirectory(frame, c.Tree.Root, why);
        foreach (var (parent, entry, w) in frame.Added) AddNew(frame, parent, entry, w, emitEvents: false);
        c.Recheck = [];
    }

    private void ScanDirectory(Frame frame, UpperNode dir, Change why)
    {
        var tree = frame.C.Tree;
        int fd = Dirents.OpenDirectory(tree.Abs(dir.Path));
        if (fd < 0) return; // gone: the parent's rescan records it
        List<DirectoryEntry> entries;
        try { entries = DirectoryReader.ReadEntries(fd); }
        catch (IOException e) { log($"{frame.C.Key}: cannot read {RawPath.Escape(dir.Path)}: {e.Message}"); return; }
        finally { Libc.close(fd); }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (dir.Partial && !tree.InScope(Join(dir, e.Name))) continue; // not watched: never mapped nor recorded
            var key = RawPath.Key(e.Name);
            seen.Add(key);
            if (dir.Children!.TryGetValue(key, out var child))
            {
                if (child.Ino == e.Inode) continue;
                frame.Removed.Add((child, why)); // the same name, another inode: replaced
            }
            frame.Added.Add((dir, e, why));
        }
        foreach (var (key, child) in dir.Children!)
            if (!seen.Contains(key)) frame.Removed.Add((child, why));
    }

    private void ApplyDirectoryChanges(Frame frame)
    {
        var tree = frame.C.Tree;
        if (frame.Added.Count == 0 && frame.Removed.Count == 0) return;
        var removedByIno = new Dictionary<ulong, List<UpperNode>>();
        foreach (var (node, _) in frame.Removed)
        {
            if (!removedByIno.TryGetValue(node.Ino, out var l)) removedByIno[node.Ino] = l = [];
            l.Add(node);
        }
        var moved = new HashSet<UpperNode>();
        var addedNames = new HashSet<(UpperNode, string)>();
        foreach (var (parent, entry, _) in frame.Added) addedNames.Add((parent, RawPath.Key(entry.Name)));

        // Renames first: the same inode gone from one name and present under another. Also when the old name's
        // directory was not rescanned in this frame (the kernel's events for one rename can straddle a frame
        // boundary): an inode we know at a path that no longer holds it.
        var plainAdds = new List<(UpperNode Parent, DirectoryEntry Entry, Change Why)>();
        foreach (var (parent, entry, why) in frame.Added)
        {
            UpperNode? source = null;
            // An inode number freed by a delete is reused by the next create (rm a; mkdir b): only the same type
            // and the same birth time make it the same file under a new name.
            bool entryIsDir = entry.Type == DirectoryEntry.DT_DIR;
            long btime = -1;
            bool SameFile(UpperNode n)
            {
                if (n.IsDir != entryIsDir && entry.Type != DirectoryEntry.DT_UNKNOWN) return false;
                if (btime < 0) btime = Birth.TimeOf(tree.Abs(Join(parent, entry.Name)));
                return n.Btime == 0 || btime == 0 || n.Btime == btime;
            }
            if (removedByIno.TryGetValue(entry.Inode, out var candidates))
            {
                source = candidates.FirstOrDefault(n => !moved.Contains(n) && SameFile(n));
            }
            if (source == null)
            {
                foreach (var n in tree.Find(entry.Inode))
                {
                    if (moved.Contains(n) || n == parent || (n.Parent == parent && n.Name.AsSpan().SequenceEqual(entry.Name))) continue;
                    if (!SameFile(n)) continue;
                    if (!Dirents.TryLstat(tree.Abs(n.Path), out var st) || st.Inode != entry.Inode) { source = n; break; }
                }
            }
            if (source == null || IsAncestor(source, parent)) { plainAdds.Add((parent, entry, why)); continue; }
            moved.Add(source);
            var oldPath = source.Path;
            bool wasIncluded = frame.C.Filter.Includes(oldPath, source.IsDir);
            tree.Move(source, parent, entry.Name);
            var newPath = source.Path;
            if (wasIncluded) RecordDeleted(frame, source, oldPath, why.Time);
            if (wasIncluded || frame.C.Filter.Includes(newPath, source.IsDir))
                frame.Events.Add(new RecordedEvent { Time = why.Time, Kind = EventKinds.Rename, Path = oldPath, ToPath = newPath, Pid = why.Pid, Comm = why.Comm });
            foreach (var n in UpperTree.Walk(source).ToList())
            {
                n.LastVersionTime = long.MinValue; // a new path: its own version history
                Capture(frame, n, why.Time, out _);
            }
        }

        // Removals: a name gone (not renamed, not replaced by a new entry of the same name).
        foreach (var (node, why) in frame.Removed)
        {
            if (moved.Contains(node)) continue;
            var parent = node.Parent;
            if (parent == null) continue;
            bool replaced = addedNames.Contains((parent, RawPath.Key(node.Name)));
            var path = node.Path;
            if (!replaced && tree.Find(node.Ino).Contains(node) && frame.C.Filter.Includes(path, node.IsDir))
            {
                RecordDeleted(frame, node, path, why.Time);
                AddEvent(frame, node.IsDir ? "rmdir" : "delete", path, why);
            }
            tree.Remove(node);
        }

        foreach (var (parent, entry, why) in plainAdds) AddNew(frame, parent, entry, why, emitEvents: true);
        frame.Added.Clear();
        frame.Removed.Clear();
    }

    private static bool IsAncestor(UpperNode a, UpperNode b)
    {
        for (var n = b; n != null; n = n.Parent) if (n == a) return true;
        return false;
    }

    /// <summary>A name that appeared: captured, and for a directory everything in it, recursively.</summary>
    private void AddNew(Frame frame, UpperNode parent, DirectoryEntry entry, Change why, bool emitEvents)
    {
        var tree = frame.C.Tree;
        var rel = Join(parent, entry.Name);
        if (parent.Partial && !tree.InScope(rel)) return;               // not a watched directory nor on the way to one
        if (!Dirents.TryLstat(tree.Abs(rel), out var st)) return; // already gone again: nothing to show
        bool knownElsewhere = !st.IsDirectory && st.Nlink > 1 && tree.Knows(st.Inode);
        var linkTarget = knownElsewhere ? tree.Find(st.Inode)[0].Path : null;
        var node = tree.Add(parent, entry.Name, st.Inode, st.IsDirectory);
        node.Btime = Birth.TimeOf(tree.Abs(rel));
        node.Partial = parent.Partial && tree.IsPartial(rel);
        if (!Capture(frame, node, why.Time, out st, mayWait: emitEvents)) { /* filtered or unreadable: still mapped */ }
        if (emitEvents && frame.C.Filter.Includes(rel, node.IsDir))
        {
            string? kind;
            if (st.IsWhiteout) kind = "delete";                          // an image file deleted
            else if (st.IsDirectory) kind = InLower(frame.C, rel) ? null : "mkdir"; // copy-up of an image directory: no change of its own
            else if (st.IsSymlink) kind = "symlink";
            else if (knownElsewhere) kind = "link";
            else kind = InLower(frame.C, rel) ? "write" : "create";    // first change of an image file: copy-up
            if (kind != null)
            {
                var e = AddEvent(frame, kind, rel, why);
                if (kind == "link" && linkTarget != null) e.Detail = "hard link to /" + RawPath.Escape(linkTarget);
            }
        }
        if (!st.IsDirectory) return;
        int fd = Dirents.OpenDirectory(tree.Abs(rel));
        if (fd < 0) return;
        List<DirectoryEntry> children;
        try { children = DirectoryReader.ReadEntries(fd); }
        catch (IOException) { return; }
        finally { Libc.close(fd); }
        // Entries of a new directory were made by whoever changed that directory in this frame (mkdir -p a/b by
        // mkdir, then a/b/c by the shell), else by whoever made the directory.
        var inner = frame.Changes.TryGetValue(node.Ino, out var own) && (own.Kinds & ChangeKinds.Directory) != 0 ? own : why;
        foreach (var child in children) AddNew(frame, node, child, inner, emitEvents);
    }

    private static byte[] Join(UpperNode parent, byte[] name) => RawPath.Join(parent.Path, name);

    private static bool InLower(TrackedContainer c, byte[] rel)
    {
        foreach (var lower in c.LowerDirs)
            if (Dirents.TryLstat([.. RawPath.EncodeArg(lower), (byte)'/', .. rel], out var st) && !st.IsWhiteout) return true;
        return false;
    }

    /// <summary>Captures one path as it is now at <paramref name="time"/>; false when filtered out, too big or gone.
    /// With <paramref name="mayWait"/> (live changes), a busy large file is not read yet (see the class): true, with
    /// <paramref name="st"/> its state now, and the node in <see cref="Frame.Waiting"/> instead of <see cref="Frame.Captured"/>.
    /// <paramref name="changeEvent"/>: the kernel reported a change of it in this frame.</summary>
    private bool Capture(Frame frame, UpperNode node, long time, out StatInfo st, bool mayWait = false, bool changeEvent = false)
    {
        var c = frame.C;
        var path = node.Path;
        st = default;
        if (!c.Filter.Includes(path, node.IsDir)) return false;
        if (!Dirents.TryLstat(c.Tree.Abs(path), out st) || st.Inode != node.Ino) return false;
        if (frame.Captured.Contains(node) || (mayWait && frame.Waiting.Contains(node))) return true;
        if (st.IsRegular && !frame.ExitState && maxLiveFileSize > 0 && (long)st.Size > maxLiveFileSize)
        {
            if (c.OversizeReported.Add(RawPath.Key(path)))
                frame.Events.Add(new RecordedEvent
                {
                    Time = time, Kind = EventKinds.Gap, Path = path,
                    Detail = $"file larger than the live capture limit ({maxLiveFileSize} bytes): only its exit state is recorded",
                });
            return false;
        }
        if (mayWait && WaitsWhileBusy(frame, node, st, changeEvent)) return true;
        // A live read of a large file that races a write shows it busy (see the class): one attempt, not three (each
        // a read of all of it, on the writer's memory bandwidth; three racing reads of (d)'s 64 MiB took 0.3-0.4 s).
        bool oneAttempt = mayWait && st.IsRegular && (long)st.Size >= BusyFileFloor;
        bool waitedLongest = node.WaitingSince != 0;
        node.Seen = st;
        node.WaitingSince = 0;
        time = Math.Max(time, node.LastVersionTime + 1);
        // A second name of an inode whose other name is recorded with the content it has now: a hard link to it, as
        // the exit state's tree ingest records it (never two independent copies of one file).
        var linkTo = st.IsRegular && st.Nlink > 1 ? CurrentOtherName(frame, node, st) : null;
        if (linkTo != null) time = Math.Max(time, linkTo.LastVersionTime);
        var lastBefore = node.Last;
        node.Last = st;
        try
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            var s = ingester.IngestPath(c.Recording, c.Info.UpperDir, path, time, linkTo?.Path, oneAttempt: oneAttempt, deferSave: true);
            frame.SummaryUnsaved = true;
            frame.IngestTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
            frame.BytesRead += s.BytesRead;
            metrics.VersionsWritten.Add(s.Changed);
            metrics.BytesIngested.Add(s.BytesRead);
            if (s.Raced > 0)
            {
                // Being written as it was read: nothing recorded; it waits like a busy file (read when it pauses, within
                // 1 s, at exit). A read after waiting its longest says so in the recording (at most one gap a second).
                if (waitedLongest)
                    frame.Events.Add(new RecordedEvent
                    {
                        Time = time, Kind = EventKinds.Gap, Path = path,
                        Detail = "file kept changing while it was read: its next version when it pauses, or its exit state",
                    });
                node.Last = lastBefore;
                node.ChangedInFrame = frame.Seq;
                StartWaiting(frame, node);
                return true;
            }
        }
        catch (Exception e) when (e is IOException or NotFoundException or UnauthorizedAccessException)
        {
            frame.Events.Add(new RecordedEvent { Time = time, Kind = EventKinds.Gap, Path = path, Detail = "could not read it: " + e.Message });
            return false;
        }
        node.LastVersionTime = time;
        frame.Captured.Add(node);
        return true;
    }

    /// <summary>Whether a live capture of <paramref name="node"/> waits because the file is busy (see the class):
    /// large, not its first sight, changed in this frame and in the previous one, and not waiting for
    /// <see cref="MaxBusyWaitNs"/> already. Notes the look (<see cref="UpperNode.Seen"/>, <see cref="UpperNode.ChangedInFrame"/>).</summary>
    private static bool WaitsWhileBusy(Frame frame, UpperNode node, in StatInfo st, bool changeEvent)
    {
        bool firstSight = node.Seen.Inode != st.Inode;
        bool changed = changeEvent || firstSight || st.Size != node.Seen.Size || st.MtimeNs != node.Seen.MtimeNs || st.CtimeNs != node.Seen.CtimeNs;
        bool changedBefore = node.ChangedInFrame == frame.Seq - 1;
        if (changed) node.ChangedInFrame = frame.Seq;
        node.Seen = st;
        bool busy = changed && changedBefore && !firstSight && st.IsRegular && (long)st.Size >= BusyFileFloor;
        if (!busy) return false; // Capture reads it
        if (node.WaitingSince != 0 && frame.Now - node.WaitingSince >= MaxBusyWaitNs) return false;
        StartWaiting(frame, node);
        return true;
    }

    /// <summary>Leaves <paramref name="node"/> unread in this frame (re-checked in the next), its wait counted from now unless it already waits.</summary>
    private static void StartWaiting(Frame frame, UpperNode node)
    {
        if (node.WaitingSince == 0) node.WaitingSince = frame.Now;
        frame.Waiting.Add(node);
    }

    /// <summary>The inode's first name (lowest path, so two names never point at each other) when that is another
    /// name than <paramref name="node"/> and its recorded version holds the inode's content now: captured in this
    /// frame, or last captured with the same size and mtime. Null: capture <paramref name="node"/> as a file.</summary>
    private static UpperNode? CurrentOtherName(Frame frame, UpperNode node, in StatInfo st)
    {
        UpperNode? first = null;
        foreach (var o in frame.C.Tree.Find(st.Inode))
            if (!o.IsDir && (first == null || o.Path.AsSpan().SequenceCompareTo(first.Path) < 0)) first = o;
        if (first == null || first == node || first.LastVersionTime == long.MinValue) return null;
        bool current = frame.Captured.Contains(first) ||
                       (first.Last.Inode == st.Inode && first.Last.Size == st.Size && first.Last.MtimeNs == st.MtimeNs);
        return current ? first : null;
    }

    private void RecordDeleted(Frame frame, UpperNode node, byte[] path, long time)
    {
        ingester.RecordDeleted(frame.C.Recording, path, Math.Max(time, node.LastVersionTime + 1), deferSave: true);
        frame.SummaryUnsaved = true;
        metrics.VersionsWritten.Add(1);
    }

    private static RecordedEvent AddEvent(Frame frame, string kind, byte[] path, Change why)
    {
        var e = new RecordedEvent { Time = why.Time, Kind = kind, Path = path, Pid = why.Pid, Comm = why.Comm };
        frame.Events.Add(e);
        return e;
    }

    /// <summary>What a metadata-only change was, from the lstat before and after it; null when it only gained or
    /// lost a name (the link or delete event of that name tells it).</summary>
    private static string? Classify(in StatInfo before, in StatInfo after)
    {
        if (before.Inode == 0) return "write";
        if ((before.Mode & 0xFFF) != (after.Mode & 0xFFF)) return "chmod";
        if (before.Uid != after.Uid || before.Gid != after.Gid) return "chown";
        if (after.Size < before.Size) return "truncate";
        if (after.Size != before.Size || after.MtimeNs != before.MtimeNs) return "write";
        if (after.Nlink != before.Nlink) return null;
        if (after.CtimeNs == before.CtimeNs) return null; // nothing changed after all (a stale or reused inode)
        return "xattr";
    }
}
