using System.Collections.Concurrent;
using System.Text;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Store.Query;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Writes captured state into a recording: a whole overlay upper directory at a moment, one changed path at a
/// moment, or a deletion. Unchanged entries are skipped by their lstat fingerprint (inode, size, mtime, ctime),
/// then by content (chunk dedup). Regular files are read, chunked, hashed and compressed on worker threads;
/// a version is written only after every chunk it references (see <see cref="DeferredVersions"/>).
/// </summary>
public sealed unsafe class Ingester
{
    private readonly RecordingStore _store;
    /// <summary>Chunks this process has seen written: saves a RocksDB lookup per repeated chunk.</summary>
    private readonly ConcurrentDictionary<Hash256, byte> _known = new();
    private const int KnownLimit = 2_000_000;
    private readonly ConcurrentDictionary<Hash256, ManualResetEventSlim> _inflight = new();

    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// The overlay's merged view of the captured upper directory, when known (the container's mounted rootfs). A
    /// metadata-only copy-up (overlay metacopy: the upper file has no data) is read from here; without it such a
    /// file is recorded as metadata plus a gap, never as its upper layer's empty data.
    /// </summary>
    public string? MergedRoot { get; init; }

    public Ingester(RecordingStore store)
    {
        if (store.ReadOnly) throw new InvalidOperationException("store is open read-only");
        _store = store;
    }

    /// <summary>
    /// Makes <paramref name="dir"/> (read like an overlay upper layer) the recording's state at <paramref name="time"/>:
    /// what is in it is recorded (skipping what is unchanged), and every path of the state before that is not in it
    /// any more gets an absence version (one for the topmost missing directory covers its subtree).
    /// </summary>
    /// <param name="pacer">Slows the reading of file content (see <see cref="IIngestPacer"/>); null = full speed.</param>
    public IngestSummary IngestTree(RecordingInfo rec, string dir, long time, Action<IngestSummary>? progress = null, IIngestPacer? pacer = null)
    {
        if (_known.Count > KnownLimit) _known.Clear();
        var run = new TreeRun(this, rec, dir, time, StateQuery.At(_store, rec.Id, time), pacer);
        run.Execute(progress);
        Finish(rec, time, run.Summary, run.Gaps);
        return run.Summary;
    }

    /// <summary>
    /// Captures one path (relative to <paramref name="root"/>) as it is now, as its state at <paramref name="time"/>.
    /// A path that is gone from the upper directory is recorded absent; a directory also records every child that
    /// disappeared from it since the state before (its own subdirectories' contents are their own captures).
    /// </summary>
    /// <param name="hardLinkTo">Another name of the same inode, already captured at or before <paramref name="time"/>:
    /// the path is then recorded as a hard link to it (same content, <see cref="FileVersion.HardLinkTo"/>), as a tree
    /// ingest records a second name, instead of as an independent copy. Ignored when the path is not a regular file
    /// with more than one link, or the other name's version is not of the same inode.</param>
    /// <param name="oneAttempt">Read a regular file once: if that read races a write, record nothing for it (no
    /// version, no gap) and count it in <see cref="IngestSummary.Raced"/> — for a caller that reads it again later
    /// (the recorder's live capture of a large file: re-reading one that is being written costs the writer).</param>
    /// <param name="deferSave">Leave saving the recording's summary (last moment, stored bytes; updated in
    /// <paramref name="rec"/>) to the caller, who saves it once for many paths (<see cref="RecordingStore.SaveRecording"/>,
    /// or <see cref="RecordingStore.AddEvents"/>, which saves it too): the recorder's frames, where a save per file was
    /// one more RocksDB write per file (~2 % of the daemon's CPU while a command created 3,000 files).</param>
    public IngestSummary IngestPath(RecordingInfo rec, string root, byte[] path, long time, byte[]? hardLinkTo = null, IIngestPacer? pacer = null,
        bool oneAttempt = false, bool deferSave = false)
    {
        // The path itself and its recorded children: enough to judge what disappeared from a directory.
        var prevState = StateQuery.At(_store, rec.Id, time, subtree: path, withChunks: true);
        var key = RawPath.Key(path);
        prevState.Entries.Remove(key);
        var own = _store.LatestVersionOf(rec.Id, path, time, withChunks: true);
        if (own is { IsDeleted: true }) prevState.Tombstones[key] = own;
        else if (own != null && StateQuery.Find(_store, rec.Id, path, time, withChunks: false) != null) prevState.Entries[key] = own;
        var run = new TreeRun(this, rec, root, time, prevState, pacer);
        run.ExecuteOne(path, hardLinkTo, oneAttempt);
        Finish(rec, time, run.Summary, run.Gaps, deferSave);
        return run.Summary;
    }

    /// <summary>
    /// Records that a path vanished from the upper directory at <paramref name="time"/> (an absence version, which
    /// also ends everything recorded below it). Nothing is written when the path is not in the state then. A deleted
    /// file of the image leaves a whiteout in the upper directory instead: capture that with <see cref="IngestPath"/>.
    /// </summary>
    public void RecordDeleted(RecordingInfo rec, byte[] path, long time, bool deferSave = false)
    {
        if (StateQuery.Find(_store, rec.Id, path, time, withChunks: false) == null) return;
        using (var batch = _store.Sink.NewVersionBatch())
        {
            batch.Add(rec.Id, new FileVersion { Path = path, Time = time, Type = EntryType.Absent });
            _store.Sink.WriteVersions(batch);
        }
        Finish(rec, time, new IngestSummary { Changed = 1 }, [], deferSave);
    }

    private void Finish(RecordingInfo rec, long time, IngestSummary s, IReadOnlyCollection<RecordedEvent> gaps, bool deferSave = false)
    {
        if (time > rec.LastMoment) rec.LastMoment = time;
        rec.StoredBytes += s.BytesStored;
        if (gaps.Count > 0) _store.AddEvents(rec, gaps);
        else if (!deferSave) _store.SaveRecording(rec);
    }

    /// <summary>One ingest of a tree (or of one path of it).</summary>
    private sealed class TreeRun
    {
        private readonly Ingester _owner;
        private readonly RecordingStore _store;
        private readonly RecordingInfo _rec;
        private readonly byte[] _root;
        private readonly byte[]? _merged;
        private readonly long _time;
        private readonly RecordingState _prev;
        private readonly IIngestPacer? _pacer;
        private readonly ChunkSink.VersionBatch _metaBatch;
        /// <summary>Set for a whole-tree run: version records wait until their (unlogged) chunks are durable.</summary>
        private DeferredVersions? _deferred;
        private BlockingCollection<FileJob>? _queue;
        /// <summary>Names of hard-linked inodes, in walk order: decided together after the walk (see QueueLinkGroups).</summary>
        private readonly Dictionary<(uint, uint, ulong), List<FileJob>> _linkGroups = [];
        private readonly List<FileJob> _laterLinks = [];
        private readonly ConcurrentDictionary<string, FileVersion> _captured = new(StringComparer.Ordinal);
        /// <summary>What a tree walk found, by path key: the absence pass compares the state before against it.</summary>
        private readonly Dictionary<string, Seen> _seen = new(StringComparer.Ordinal);
        private enum Seen : byte { Dir, NonDir, ReplacingDir, Unjudged }

        public IngestSummary Summary { get; } = new();
        public ConcurrentQueue<RecordedEvent> Gaps { get; } = new();

        /// <summary>A whole-tree run's read-ahead thread (null while capturing one path).</summary>
        private ReadAhead? _readAhead;

        /// <param name="Seq">Its place in the queue, for <see cref="ReadAhead"/>.</param>
        private sealed record FileJob(byte[] Path, byte[] AbsZ, StatInfo Stat, FileVersion? Prev, bool Force, byte[]? LinkTo, long Seq = -1);

        public TreeRun(Ingester owner, RecordingInfo rec, string root, long time, RecordingState prev, IIngestPacer? pacer)
        {
            _pacer = pacer;
            _owner = owner;
            _store = owner._store;
            _rec = rec;
            _root = RawPath.EncodeArg(root.Length > 1 ? root.TrimEnd('/') : root);
            if (owner.MergedRoot is { } m) _merged = RawPath.EncodeArg(m.Length > 1 ? m.TrimEnd('/') : m);
            _time = time;
            _prev = prev;
            _metaBatch = _store.Sink.NewVersionBatch();
        }

        public void Execute(Action<IngestSummary>? progress)
        {
            var rootZ = Libc.CString(_root);
            int rootFd;
            fixed (byte* p = rootZ) rootFd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (rootFd < 0)
            {
                int e = Libc.Errno;
                if (e == Libc.ENOENT || e == Libc.ENOTDIR) throw new NotFoundException($"{Encoding.UTF8.GetString(_root)}: no such directory");
                throw new IOException($"{Encoding.UTF8.GetString(_root)}: {Libc.ErrorText(e)}");
            }
            // Jobs are small (a path and its stat): a deep queue lets the read-ahead see far enough into a run of
            // small files to keep the disk busy (it is bounded by bytes, not by files).
            _queue = new BlockingCollection<FileJob>(boundedCapacity: 4096);
            using var deferred = _deferred = new DeferredVersions(_store);
            using var readAhead = _readAhead = new ReadAhead(_pacer);
            var workers = new Thread[_owner.Workers];
            Exception? failure = null;
            for (int i = 0; i < workers.Length; i++)
            {
                workers[i] = new Thread(() =>
                {
                    using var cap = new FileCapture(_store, deferred, _owner._known, _owner._inflight, _merged, readAhead);
                    // Keep consuming after a failure so the walker never blocks on a full queue.
                    foreach (var job in _queue.GetConsumingEnumerable())
                    {
                        readAhead.Taken(job.Seq);
                        if (failure != null) continue;
                        try { CaptureFile(cap, job); }
                        catch (Exception e) { failure ??= e; }
                    }
                }) { IsBackground = true, Name = "ingest-" + i };
                workers[i].Start();
            }
            try
            {
                Walk(rootFd, [], force: false, progress);
                QueueLinkGroups();
            }
            finally
            {
                Libc.close(rootFd);
                _queue.CompleteAdding();
                foreach (var w in workers) w.Join();
                readAhead.Dispose(); // nothing is left to read ahead of
            }
            if (failure != null) throw new IOException("ingest failed: " + failure.Message, failure);
            foreach (var job in _laterLinks) CaptureLink(job);
            RecordAbsences();
            deferred.Complete();
            _deferred = null;
        }

        /// <summary>
        /// The upper directory is the whole change set: a path of the state before that the walk did not find was
        /// removed or renamed away. One absence for the topmost such path covers its subtree (the state query hides
        /// what is below it), and nothing is judged below a directory that could not be read. Costs one lookup per
        /// recorded path; only the missing ones are sorted.
        /// </summary>
        private void RecordAbsences()
        {
            var missing = new List<FileVersion>();
            foreach (var (key, v) in _prev.Entries)
                if (!_seen.ContainsKey(key)) missing.Add(v);
            // A whiteout no longer there is gone from the upper layer too (an export must not write it back).
            foreach (var (key, v) in _prev.Tombstones)
                if (v.Type == EntryType.Whiteout && !_seen.ContainsKey(key)) missing.Add(v);
            if (missing.Count == 0) return;
            missing.Sort(static (a, b) => RecordingState.ComparePaths(a.Path, b.Path)); // parents first
            var gone = new HashSet<string>(StringComparer.Ordinal);
            foreach (var v in missing)
            {
                var key = RawPath.Key(v.Path);
                if (CoveredByAncestor(key, gone)) continue;
                gone.Add(key);
                PutMeta(Absence(v.Path));
            }
        }

        /// <summary>
        /// An ancestor already recorded absent, or found now as a non-directory or an opaque replacement (both hide
        /// what was below), or unreadable (then nothing below it is known).
        /// </summary>
        private bool CoveredByAncestor(string key, HashSet<string> gone)
        {
            for (int i = key.IndexOf('/'); i >= 0; i = key.IndexOf('/', i + 1))
            {
                var anc = key[..i];
                if (gone.Contains(anc)) return true;
                if (_seen.TryGetValue(anc, out var s) && s != Seen.Dir) return true;
            }
            return false;
        }

        /// <summary>
        /// A hard-linked inode is one state under several names, and the export can link only names recorded at the
        /// same moment. Per-name skipping breaks that (a name renamed or linked anew is new while the others look
        /// unchanged), so the group is judged as a whole: skipped only when every name is unchanged and its recorded
        /// link still points into the group at the same moment; otherwise every name is written at this moment —
        /// the first read, the others as links to it.
        /// </summary>
        private void QueueLinkGroups()
        {
            foreach (var group in _linkGroups.Values)
            {
                // One name in this tree: its other links are outside it (the exit state is a tree the shim hard-linked
                // out of the upper directory, so every file there has a link count of 2) — an ordinary file, judged
                // by content like any other, not rewritten because its ctime moved with the extra link.
                if (group.Count == 1) { Enqueue(group[0]); continue; }
                var names = new HashSet<string>(group.Select(j => RawPath.Key(j.Path)), StringComparer.Ordinal);
                long? time = group[0].Prev?.Time;
                bool unchanged = group.All(j => !j.Force && Unchanged(j.Prev, j.Stat) && j.Prev!.Time == time &&
                                                (j.Prev.HardLinkTo.Length == 0 || names.Contains(RawPath.Key(j.Prev.HardLinkTo))));
                if (unchanged) continue;
                var first = group[0];
                Enqueue(first with { Force = true });
                foreach (var later in group.Skip(1)) _laterLinks.Add(later with { Force = true, LinkTo = first.Path });
            }
        }

        public void ExecuteOne(byte[] path, byte[]? hardLinkTo = null, bool oneAttempt = false)
        {
            var parent = RawPath.Parent(path).ToArray();
            var nameZ = Libc.CString(RawPath.Name(path));
            var parentZ = Libc.CString(Join(_root, parent));
            int dirfd;
            fixed (byte* p = parentZ) dirfd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            try
            {
                if (dirfd < 0 || !StatInfo.TryLstat(dirfd, nameZ, out var st, out _))
                {
                    // Gone from the upper directory: the container removed (or renamed away) what it had created.
                    // Overlay leaves no whiteout for that, and neither do we: an absence.
                    if (_prev.Entries.ContainsKey(RawPath.Key(path))) PutMeta(Absence(path));
                    FlushMeta();
                    return;
                }
                Summary.Files++;
                if (st.IsRegular && hardLinkTo != null && st.Nlink > 1 &&
                    _store.LatestVersionOf(_rec.Id, hardLinkTo, _time, withChunks: false) is { Type: EntryType.File } other && other.Inode == st.Inode)
                {
                    CaptureLink(new FileJob(path, Libc.CString(Join(_root, path)), st, _prev.Get(path), false, hardLinkTo));
                    FlushMeta();
                    return;
                }
                if (st.IsRegular)
                {
                    using var cap = new FileCapture(_store, null, _owner._known, _owner._inflight, _merged, _pacer) { Attempts = oneAttempt ? 1 : 3 };
                    CaptureFile(cap, new FileJob(path, Libc.CString(Join(_root, path)), st, _prev.Get(path), false, null));
                    return;
                }
                CaptureOther(dirfd, nameZ, path, st, force: false, recurse: false, progress: null);
                if (st.IsDirectory) RecordVanishedChildren(dirfd, nameZ, path);
                FlushMeta();
            }
            finally
            {
                if (dirfd >= 0) Libc.close(dirfd);
            }
        }

        /// <summary>Every recorded child of <paramref name="path"/> that is not in the directory now becomes absent.</summary>
        private void RecordVanishedChildren(int parentFd, byte[] nameZ, byte[] path)
        {
            int fd;
            fixed (byte* p = nameZ) fd = Libc.openat(parentFd, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            if (fd < 0) return; // unreadable or gone again: judge nothing (the directory's own capture said what it could)
            HashSet<string> present;
            try
            {
                present = new HashSet<string>(StringComparer.Ordinal);
                foreach (var name in Native.DirectoryReader.ReadNames(fd)) present.Add(RawPath.Key(RawPath.Join(path, name)));
            }
            finally { Libc.close(fd); }
            var children = _prev.Entries.Values.Where(v => RawPath.Parent(v.Path).SequenceEqual(path)).ToList();
            foreach (var child in children)
                if (!present.Contains(RawPath.Key(child.Path))) PutMeta(Absence(child.Path));
        }

        private FileVersion Absence(byte[] path) => new() { Path = path, Time = _time, Type = EntryType.Absent };

        private static byte[] Join(byte[] root, byte[] rel) =>
            rel.Length == 0 ? root : [.. root, (byte)'/', .. rel];

        private void Walk(int dirfd, byte[] relDir, bool force, Action<IngestSummary>? progress)
        {
            foreach (var name in Native.DirectoryReader.ReadNames(dirfd))
            {
                var path = RawPath.Join(relDir, name);
                var nameZ = Libc.CString(name);
                if (!StatInfo.TryLstat(dirfd, nameZ, out var st, out var errno))
                {
                    if (errno != Libc.ENOENT)
                    {
                        Gap(path, "cannot stat: " + Libc.ErrorText(errno));
                        _seen[RawPath.Key(path)] = Seen.Unjudged;
                    }
                    continue;
                }
                _seen[RawPath.Key(path)] = st.IsDirectory ? Seen.Dir : Seen.NonDir;
                Summary.Files++;
                if (progress != null && (Summary.Files & 1023) == 0) progress(Summary);
                if (st.IsRegular)
                {
                    var prev = _prev.Get(path);
                    if (st.Nlink > 1)
                    {
                        var id = (st.DevMajor, st.DevMinor, st.Inode);
                        if (!_linkGroups.TryGetValue(id, out var group)) _linkGroups[id] = group = [];
                        group.Add(new FileJob(path, Libc.CString(Join(_root, path)), st, prev, force, null));
                        continue;
                    }
                    if (!force && Unchanged(prev, st)) continue;
                    Enqueue(new FileJob(path, Libc.CString(Join(_root, path)), st, prev, force, null));
                    continue;
                }
                CaptureOther(dirfd, nameZ, path, st, force, recurse: true, progress);
            }
        }

        /// <summary>Hands a file to the workers, and to the read-ahead in the same order.</summary>
        private void Enqueue(FileJob job) => _queue!.Add(job with { Seq = _readAhead!.Add(job.AbsZ, (long)job.Stat.Size) });

        /// <summary>Fingerprint match with the previous version: same inode, size, mtime and ctime (ctime moves on chmod, chown, xattr and link changes).</summary>
        private static bool Unchanged(FileVersion? prev, in StatInfo st) =>
            prev != null && prev.Inode == st.Inode && prev.CtimeNs == st.CtimeNs && prev.MtimeNs == st.MtimeNs &&
            prev.Type == EntryMetadata.TypeOf(st) && (prev.Type != EntryType.File || prev.Size == (long)st.Size);

        private void CaptureOther(int dirfd, byte[] nameZ, byte[] path, in StatInfo st, bool force, bool recurse, Action<IngestSummary>? progress)
        {
            var prev = _prev.Get(path);
            if (st.IsWhiteout)
            {
                // Already a whiteout at this moment: nothing new. A whiteout over a path the recording never saw still
                // counts: it deletes a file of the image's lower layers. After an absence it is new state too.
                if (prev == null && _prev.Tombstones.TryGetValue(RawPath.Key(path), out var tomb) && tomb.Type == EntryType.Whiteout) return;
                PutMeta(EntryMetadata.FromStat(path, _time, st));
                return;
            }
            if (st.IsDirectory)
            {
                int fd;
                fixed (byte* p = nameZ) fd = Libc.openat(dirfd, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (fd < 0)
                {
                    int e = Libc.Errno;
                    if (e != Libc.ENOENT) Gap(path, "cannot open directory: " + Libc.ErrorText(e));
                    // Gone meanwhile: absent like anything else missing. Unreadable: nothing below it is judged.
                    if (e == Libc.ENOENT) _seen.Remove(RawPath.Key(path));
                    else _seen[RawPath.Key(path)] = Seen.Unjudged;
                    return;
                }
                try
                {
                    bool below = force;
                    if (force || !Unchanged(prev, st))
                    {
                        var v = EntryMetadata.FromStat(path, _time, st);
                        EntryMetadata.ApplyXattrs(v, Xattrs.Read(fd, null));
                        // Turning opaque (or opaque and new) hides everything older below it: re-capture all of it.
                        v.ReplacesBelow = v.Opaque && (prev == null || prev.Type != EntryType.Directory || !prev.Opaque || prev.Inode != st.Inode);
                        below |= v.ReplacesBelow;
                        if (v.ReplacesBelow) _seen[RawPath.Key(path)] = Seen.ReplacingDir;
                        if (force || v.ReplacesBelow || prev == null || !prev.SameState(v)) PutMeta(v);
                    }
                    if (recurse) Walk(fd, path, below, progress);
                }
                finally { Libc.close(fd); }
                return;
            }
            if (!force && Unchanged(prev, st)) return;
            var ov = EntryMetadata.FromStat(path, _time, st);
            try
            {
                if (st.IsSymlink) ov.SymlinkTarget = EntryMetadata.ReadLink(dirfd, nameZ, (long)st.Size);
                EntryMetadata.ApplyXattrs(ov, Xattrs.Read(-1, Libc.CString(Join(_root, path))));
            }
            catch (IOException e)
            {
                Gap(path, e.Message);
                return;
            }
            if (!force && prev != null && prev.SameState(ov)) return;
            PutMeta(ov);
        }

        private void PutMeta(FileVersion v)
        {
            Interlocked.Increment(ref Summary.Changed);
            if (_deferred != null)
            {
                _deferred.Add(_rec.Id, v);
                return;
            }
            _metaBatch.Add(_rec.Id, v);
            if (_metaBatch.Count >= 512) FlushMeta();
        }

        private void FlushMeta()
        {
            // A hard link's record names the chunks of its first name: the sink makes them durable first.
            _store.Sink.WriteVersions(_metaBatch);
            _metaBatch.Clear();
        }

        private void CaptureFile(FileCapture cap, FileJob job)
        {
            long read0 = cap.BytesRead, stored0 = cap.BytesStored;
            var outcome = cap.Capture(_rec.Id, job.Path, job.AbsZ, _time, job.Prev, job.Force, out var v, out var problem);
            Interlocked.Add(ref Summary.BytesRead, cap.BytesRead - read0);
            Interlocked.Add(ref Summary.BytesStored, cap.BytesStored - stored0);
            if (outcome == FileCapture.Outcome.Written) Interlocked.Increment(ref Summary.Changed);
            if (outcome == FileCapture.Outcome.KeptChanging && cap.Attempts == 1) Interlocked.Increment(ref Summary.Raced);
            else if (outcome is FileCapture.Outcome.Raced or FileCapture.Outcome.KeptChanging || problem != null) Gap(job.Path, problem ?? "read raced a write");
            if (v != null && job.Stat.Nlink > 1) _captured[RawPath.Key(job.Path)] = v;
        }

        /// <summary>A second name of an inode seen earlier in this snapshot: same content, recorded as a hard link.</summary>
        private void CaptureLink(FileJob job)
        {
            var first = _captured.GetValueOrDefault(RawPath.Key(job.LinkTo!))
                        ?? _store.LatestVersionOf(_rec.Id, job.LinkTo!, _time, withChunks: true);
            if (first == null || first.Type != EntryType.File) return;
            var v = EntryMetadata.FromStat(job.Path, _time, job.Stat);
            v.Xattrs = first.Xattrs;
            v.Chunks = first.Chunks;
            v.Size = first.Size;
            v.HardLinkTo = job.LinkTo!;
            if (!job.Force && job.Prev != null && job.Prev.SameState(v)) return;
            PutMeta(v);
        }

        private void Gap(byte[] path, string detail)
        {
            Interlocked.Increment(ref Summary.Gaps);
            Gaps.Enqueue(new RecordedEvent { Time = _time, Kind = EventKinds.Gap, Path = path, Detail = detail });
        }
    }
}
