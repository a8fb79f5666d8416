using System.Buffers;
using System.Collections.Concurrent;
using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Reads one regular file into chunks and a version, streaming (memory is bounded by the read buffer and the
/// pending batch, never by the file size). One instance per worker thread: it owns its buffers and zstd context.
/// </summary>
internal sealed unsafe class FileCapture : IDisposable
{
    private const int ReadSize = 1 << 20;
    /// <summary>New chunk bytes that may wait in a batch before it is written (chunks first, version last).</summary>
    private const int FlushBytes = 2 << 20;
    /// <summary>Reads of a file that raced a write before giving up on it (1: the caller retries later).</summary>
    public int Attempts { get; init; } = 3;

    private readonly RecordingStore _store;
    /// <summary>Tree ingests hold version records here and write chunks unlogged; null = one path, all logged.</summary>
    private readonly DeferredVersions? _deferred;
    private readonly ConcurrentDictionary<Hash256, byte> _known;
    /// <summary>Chunks another worker is about to write (claimed, not yet committed), with the event set on commit.</summary>
    private readonly ConcurrentDictionary<Hash256, ManualResetEventSlim> _inflight;
    private ManualResetEventSlim _batchCommitted = new();
    private readonly List<ManualResetEventSlim> _dependsOn = [];
    private readonly ChunkCodec _codec = new();
    private readonly byte[] _buf = ArrayPool<byte>.Shared.Rent(ReadSize + FastCdc.DefaultMax);
    private readonly List<Hash256> _pendingKnown = [];
    private readonly ChunkSink.ChunkBatch _batch;
    /// <summary>A single path's version record (a tree ingest holds its records in <see cref="DeferredVersions"/>).</summary>
    private readonly ChunkSink.VersionBatch _version;

    public long BytesRead, BytesStored, DeltaChunks;

    // ---- the file's previous version, for chunk deltas -----------------------------------------------------------
    private ulong _rec;
    /// <summary>The version this capture replaces (null: first capture of the path); its chunk list is loaded lazily.</summary>
    private FileVersion? _previous;
    private List<ChunkRef>? _prevChunks;
    /// <summary>Start offset of each chunk of <see cref="_prevChunks"/>, and the offset of each of its hashes.</summary>
    private long[] _prevStarts = [];
    private readonly Dictionary<Hash256, long> _prevOffsetOf = [];
    /// <summary>Offset of the next chunk in the file being read.</summary>
    private long _offset;
    /// <summary>Alignment of this file against the previous version: old offset = new offset + shift.</summary>
    private long _shift;
    /// <summary>Chunks of the current list already searched for an alignment point, and the offset after them.</summary>
    private int _alignedThrough;
    private long _alignedOffset;
    /// <summary>A delta's base chunk, rented on the first delta (see ChunkCodec's buffers).</summary>
    private byte[]? _baseRaw;

    /// <summary>The overlay's merged view (no trailing slash), where a metacopy file's data is read; null: unknown.</summary>
    private readonly byte[]? _mergedRoot;
    /// <summary>Told of every buffer read; may hold this worker back (an exit ingest beside running containers).</summary>
    private readonly IIngestPacer? _pacer;

    public FileCapture(RecordingStore store, DeferredVersions? deferred, ConcurrentDictionary<Hash256, byte> known,
        ConcurrentDictionary<Hash256, ManualResetEventSlim> inflight, byte[]? mergedRoot = null, IIngestPacer? pacer = null)
    {
        _pacer = pacer;
        _mergedRoot = mergedRoot;
        _store = store;
        _deferred = deferred;
        _known = known;
        _inflight = inflight;
        _batch = store.Sink.NewChunkBatch();
        _version = store.Sink.NewVersionBatch();
    }

    /// <summary>KeptChanging: every attempt raced a write (a <c>problem</c> says so).</summary>
    public enum Outcome { Written, Unchanged, Raced, Vanished, KeptChanging }

    /// <summary>
    /// Captures the file at <paramref name="absPathZ"/> as a version of <paramref name="path"/> at <paramref name="time"/>.
    /// Writes its new chunks, then (unless identical to <paramref name="previous"/>) the version: in one logged
    /// batch with its chunks for a single path, or held in <see cref="DeferredVersions"/> for a tree.
    /// A version written with <paramref name="problem"/> set is incomplete (a metacopy file without a merged view):
    /// the caller records the problem as a gap.
    /// </summary>
    public Outcome Capture(ulong rec, byte[] path, byte[] absPathZ, long time, FileVersion? previous, bool force, out FileVersion? version, out string? problem)
    {
        version = null;
        problem = null;
        int fd;
        fixed (byte* p = absPathZ) fd = Libc.OpenToRead(p);
        if (fd < 0)
        {
            int e = Libc.Errno;
            if (e == Libc.ENOENT) return Outcome.Vanished;
            problem = "cannot open: " + Libc.ErrorText(e);
            return Outcome.Raced;
        }
        try
        {
            for (int attempt = 0; attempt < Attempts; attempt++)
            {
                var before = StatInfo.Fstat(fd);
                if (!before.IsRegular) { problem = "not a regular file any more"; return Outcome.Raced; }
                var v = EntryMetadata.FromStat(path, time, before);
                EntryMetadata.ApplyXattrs(v, Xattrs.Read(fd, null));
                StartFile(rec, previous);
                bool raced;
                StatInfo? checkedAfterRead = null;
                if (EntryMetadata.IsMetacopy(v))
                {
                    if (!ReadMetacopy(path, v, out raced, ref problem)) return Outcome.Raced;
                }
                else if (IsSmall(before))
                {
                    // Read it whole first and chunk it after the stat check: the check's window is then the read
                    // alone, not the hashing and the store lookups of its chunks (bench-overhead (e): 20 small files
                    // each rewritten every ~25 µs lost versions to reads that raced three times).
                    int n = ReadWhole(fd, before);
                    var afterRead = StatInfo.Fstat(fd);
                    if (afterRead.Size != before.Size || afterRead.MtimeNs != before.MtimeNs || afterRead.CtimeNs != before.CtimeNs)
                    {
                        _dependsOn.Clear();
                        continue;
                    }
                    ChunkBuffered(n, v.Chunks);
                    checkedAfterRead = afterRead;
                    raced = false;
                }
                else
                {
                    ReadContent(fd, before, v.Chunks);
                    raced = false;
                }
                var after = checkedAfterRead ?? StatInfo.Fstat(fd);
                // A write during the read would change size, mtime or ctime: that copy is not a real state.
                if (raced || after.Size != before.Size || after.MtimeNs != before.MtimeNs || after.CtimeNs != before.CtimeNs)
                {
                    // Not a real state. Its chunks are still valid content (and others may wait for them): keep them.
                    Commit();
                    _dependsOn.Clear();
                    continue;
                }
                version = v;
                // A tree ingest's previous state is read without chunk lists (the fingerprint skip needs none); a
                // file re-read because its fingerprint moved (a chmod back, an extra hard link, a touch) is compared
                // by content, so its previous chunk list is read now, once — else every such file became a version.
                if (previous != null && !force && previous.Chunks.Count == 0 && previous.Size > 0 && previous.Size == v.Size &&
                    ReferenceEquals(previous, _previous) && LoadPrevious())
                    previous.Chunks = _prevChunks!;
                bool same = previous != null && !force && previous.SameState(v);
                if (_dependsOn.Count > 0)
                {
                    // Some chunks are being written by another worker: ours first, then wait for theirs, then the
                    // version — a crash in between leaves unreferenced chunks, never a version missing a chunk.
                    Commit();
                    foreach (var e in _dependsOn) e.Wait();
                    _dependsOn.Clear();
                }
                Commit();
                if (same) return Outcome.Unchanged;
                if (_deferred != null) _deferred.Add(rec, v);
                else
                {
                    // The sink makes every chunk it names durable first (one may be an unlogged chunk of a tree
                    // ingest running beside us).
                    _version.Add(rec, v);
                    try { _store.Sink.WriteVersions(_version); }
                    finally { _version.Clear(); }
                }
                return Outcome.Written;
            }
            problem = "file kept changing while it was read";
            return Outcome.KeptChanging;
        }
        catch (IOException e)
        {
            // An unreadable file is a gap, not a failed ingest. Chunks already cut are valid content: keep them,
            // which also releases any worker waiting for them.
            Commit();
            _dependsOn.Clear();
            problem = e.Message;
            return Outcome.Raced;
        }
        catch
        {
            try { Commit(); } catch { ReleaseClaims(); }
            throw;
        }
        finally { Libc.close(fd); }
    }

    /// <summary>
    /// A metadata-only copy-up (overlay metacopy): the upper file's blocks are not its data. With the merged view
    /// the data is read from there (the version is then a whole file); without it the version keeps the metacopy
    /// xattr and its size as a hole — the upper layer as it is — and <paramref name="problem"/> says the data is
    /// missing. False: the merged file cannot be read (<paramref name="problem"/> says why).
    /// </summary>
    private bool ReadMetacopy(byte[] path, FileVersion v, out bool raced, ref string? problem)
    {
        raced = false;
        if (_mergedRoot == null)
        {
            if (v.Size > 0) v.Chunks.Add(ChunkRef.Hole(v.Size));
            problem = "metadata-only copy-up (overlay metacopy): the data is in a lower layer and was not recorded (no merged view given)";
            return true;
        }
        var z = Libc.CString([.. _mergedRoot, (byte)'/', .. path]);
        int mfd;
        fixed (byte* p = z) mfd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (mfd < 0) { problem = "metacopy file: cannot open it in the merged view: " + Libc.ErrorText(Libc.Errno); return false; }
        try
        {
            var mb = StatInfo.Fstat(mfd);
            if (!mb.IsRegular || (long)mb.Size != v.Size) { raced = true; return true; }
            ReadContent(mfd, mb, v.Chunks);
            var ma = StatInfo.Fstat(mfd);
            raced = ma.Size != mb.Size || ma.MtimeNs != mb.MtimeNs || ma.CtimeNs != mb.CtimeNs;
            EntryMetadata.DropLowerPointers(v);
            return true;
        }
        finally { Libc.close(mfd); }
    }

    private void ReadContent(int fd, in StatInfo st, List<ChunkRef> chunks)
    {
        long size = (long)st.Size;
        // Fewer allocated blocks than the size needs: there are holes. Keep them as holes, not as zero chunks.
        if ((long)st.Blocks * 512 < size)
        {
            long pos = 0;
            while (pos < size)
            {
                long data = Libc.lseek(fd, pos, Libc.SEEK_DATA);
                if (data < 0 || data >= size) { AddHole(chunks, size - pos); break; }
                long hole = Libc.lseek(fd, data, Libc.SEEK_HOLE);
                if (hole < 0 || hole > size) hole = size;
                if (data > pos) AddHole(chunks, data - pos);
                ReadExtent(fd, data, hole, chunks);
                pos = hole;
            }
        }
        else
        {
            ReadExtent(fd, 0, size, chunks);
        }
    }

    /// <summary>A file without holes that fits in the read buffer: read in one go by <see cref="ReadWhole"/>.</summary>
    private bool IsSmall(in StatInfo st) => (long)st.Size <= _buf.Length && (long)st.Blocks * 512 >= (long)st.Size;

    /// <summary>Reads a small file (<see cref="IsSmall"/>) into the buffer; returns the bytes read (fewer if it shrank).</summary>
    private int ReadWhole(int fd, in StatInfo st)
    {
        int size = (int)st.Size, filled = 0;
        fixed (byte* b = _buf)
            while (filled < size)
            {
                int n = ReadAt(fd, b + filled, size - filled, filled);
                if (n == 0) break; // shrank under us: the stat check after the read notices
                filled += n;
            }
        return filled;
    }

    /// <summary>Cuts the first <paramref name="filled"/> bytes of the buffer into chunks (a whole small file).</summary>
    private void ChunkBuffered(int filled, List<ChunkRef> chunks) => CutChunks(0, filled, final: true, chunks);

    /// <summary>
    /// Emits every chunk FastCDC decides in the buffer's bytes [<paramref name="head"/>, <paramref name="filled"/>)
    /// (all of them when <paramref name="final"/>); returns the new head (the start of the undecided tail).
    /// </summary>
    private int CutChunks(int head, int filled, bool final, List<ChunkRef> chunks)
    {
        var cdc = FastCdc.Default;
        while (filled - head > 0)
        {
            int cut = cdc.NextCut(_buf.AsSpan(head, filled - head), final);
            if (cut == 0) break;
            EmitChunk(_buf.AsSpan(head, cut), chunks);
            head += cut;
        }
        return head;
    }

    /// <summary>One pread of up to <paramref name="want"/> bytes at <paramref name="off"/> (EINTR retried), counted as read and told to the pacer; 0 at the end of the file.</summary>
    private int ReadAt(int fd, byte* into, int want, long off)
    {
        nint n;
        while ((n = Libc.pread(fd, into, want, off)) < 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException("read: " + Libc.ErrorText(Libc.Errno));
        BytesRead += n;
        _pacer?.Consumed(n);
        return (int)n;
    }

    private void ReadExtent(int fd, long start, long end, List<ChunkRef> chunks)
    {
        int filled = 0, head = 0;
        long off = start;
        fixed (byte* b = _buf)
        {
            while (true)
            {
                bool final = off >= end;
                // Cut every chunk the buffered bytes decide.
                head = CutChunks(head, filled, final, chunks);
                if (final) break;
                if (head > 0)
                {
                    Buffer.MemoryCopy(b + head, b, _buf.Length, filled - head);
                    filled -= head;
                    head = 0;
                }
                int n = ReadAt(fd, b + filled, (int)Math.Min(_buf.Length - filled, end - off), off);
                if (n == 0) end = off; // shrank under us: the stat check after the read notices
                filled += n;
                off += n;
            }
        }
    }

    private void AddHole(List<ChunkRef> chunks, long length)
    {
        chunks.Add(ChunkRef.Hole(length));
        _offset += length;
    }

    private void EmitChunk(ReadOnlySpan<byte> raw, List<ChunkRef> chunks)
    {
        var h = ChunkCodec.HashOf(raw);
        long offset = _offset;
        _offset += raw.Length;
        chunks.Add(new ChunkRef(h, raw.Length));
        if (_known.ContainsKey(h)) return;
        if (_inflight.TryGetValue(h, out var other))
        {
            if (other != _batchCommitted) _dependsOn.Add(other);
            return;
        }
        if (_store.HasChunk(h)) { _known.TryAdd(h, 0); return; }
        if (!_inflight.TryAdd(h, _batchCommitted))
        {
            if (_inflight.TryGetValue(h, out other) && other != _batchCommitted) _dependsOn.Add(other);
            else if (other == null) EnsureCommitted(h);
            return;
        }
        var stored = EncodeNew(raw, h, offset, chunks);
        _batch.Add(h, stored);
        _pendingKnown.Add(h);
        BytesStored += stored.Length;
        if (_batch.Bytes >= FlushBytes) Commit(); // chunks before their version: a crash leaves orphans, never a half version
    }

    private void StartFile(ulong rec, FileVersion? previous)
    {
        _rec = rec;
        if (!ReferenceEquals(previous, _previous) || previous == null)
        {
            _previous = previous is { Type: EntryType.File } ? previous : null;
            _prevChunks = null;
        }
        _offset = _shift = _alignedOffset = 0;
        _alignedThrough = 0;
    }

    /// <summary>
    /// Encodes a chunk this store does not have yet. When the file had a previous version, the chunk most likely
    /// replaces the old chunk at the same place: FastCDC cuts at content, so after an edit the cuts fall where they
    /// fell before and only the chunks around the edit are new. "The same place" is the old chunk covering the new
    /// chunk's offset, after aligning the two versions at the nearest chunk before it that both share: an insertion
    /// or removal earlier in the file shifts every later offset, and matching by plain offset (or by index) would
    /// then pick an unrelated chunk for every later edit. The new chunk is stored as a delta against that chunk
    /// when it pays (see <see cref="ChunkCodec.Encode(ReadOnlySpan{byte}, Hash256, ReadOnlySpan{byte}, int, out bool)"/>).
    /// The base is durable: it belongs to a committed version, and versions are written only after their chunks.
    /// </summary>
    private ReadOnlySpan<byte> EncodeNew(ReadOnlySpan<byte> raw, Hash256 h, long offset, List<ChunkRef> chunks)
    {
        if (_previous == null || !LoadPrevious()) return _codec.Encode(raw);
        // Advance the alignment over the chunks cut since the last new chunk (each chunk is looked at once).
        long o = _alignedOffset;
        for (int i = _alignedThrough; i < chunks.Count - 1; i++)
        {
            var c = chunks[i];
            if (!c.IsHole && _prevOffsetOf.TryGetValue(c.Hash, out var old)) _shift = old - o;
            o += c.Length;
        }
        _alignedThrough = chunks.Count - 1;
        _alignedOffset = o;
        long target = offset + _shift;
        int at = Array.BinarySearch(_prevStarts, target);
        if (at < 0) at = ~at - 1;
        if (at < 0 || at >= _prevChunks!.Count || target >= _prevStarts[at] + _prevChunks[at].Length) return _codec.Encode(raw);
        var baseRef = _prevChunks[at];
        if (baseRef.IsHole || baseRef.Hash == h) return _codec.Encode(raw);
        var chunks0 = _store.ChunkSource;
        var st = (Codec: _codec, Hash: baseRef.Hash, Buf: _baseRaw ??= ArrayPool<byte>.Shared.Rent(FastCdc.DefaultMax), Source: chunks0, Depth: 0, Length: 0);
        try
        {
            bool found = chunks0.TryUseChunk(baseRef.Hash, ref st, static (value, ref s) =>
            {
                s.Depth = ChunkCodec.DepthOf(value);
                if (s.Depth < ChunkCodec.MaxDeltaDepth) s.Length = s.Codec.DecodeVerified(s.Hash, value, s.Buf, s.Source);
            });
            if (!found || st.Depth >= ChunkCodec.MaxDeltaDepth) return _codec.Encode(raw);
        }
        catch (CorruptDataException)
        {
            return _codec.Encode(raw); // never build on a damaged base: doctor reports it, this chunk stands alone
        }
        var stored = _codec.Encode(raw, baseRef.Hash, _baseRaw.AsSpan(0, st.Length), st.Depth, out bool delta);
        if (delta) DeltaChunks++;
        return stored;
    }

    /// <summary>The previous version's chunk list and offsets (read once per file, only when a new chunk needs it).</summary>
    private bool LoadPrevious()
    {
        if (_prevChunks != null) return _prevChunks.Count > 0;
        var p = _previous!;
        // State queries of a tree ingest read versions without their chunk lists: read this one's now.
        _prevChunks = p.Chunks.Count > 0 || p.Size == 0 ? p.Chunks
            : _store.LatestVersionOf(_rec, p.Path, p.Time, withChunks: true) is { Type: EntryType.File } full && full.Time == p.Time ? full.Chunks : [];
        _prevStarts = new long[_prevChunks.Count];
        _prevOffsetOf.Clear();
        long off = 0;
        for (int i = 0; i < _prevChunks.Count; i++)
        {
            _prevStarts[i] = off;
            if (!_prevChunks[i].IsHole) _prevOffsetOf.TryAdd(_prevChunks[i].Hash, off);
            off += _prevChunks[i].Length;
        }
        return _prevChunks.Count > 0;
    }

    /// <summary>The claim vanished between two lookups (its owner committed): it exists now.</summary>
    private void EnsureCommitted(Hash256 h)
    {
        if (!_known.ContainsKey(h) && !_store.HasChunk(h)) throw new InvalidOperationException($"chunk {h} neither claimed nor stored");
    }

    /// <summary>Writes the pending batch; only then are its chunks known to exist (and waiting workers released).</summary>
    public void Commit()
    {
        _store.Sink.WriteChunks(_batch, logged: _deferred == null);
        _batch.Clear();
        foreach (var h in _pendingKnown)
        {
            _known.TryAdd(h, 0);
            _inflight.TryRemove(h, out _);
        }
        if (_pendingKnown.Count > 0)
        {
            _batchCommitted.Set();
            _batchCommitted = new ManualResetEventSlim();
        }
        _pendingKnown.Clear();
    }

    /// <summary>Last resort when a batch cannot be written: never leave another worker waiting on our claims.</summary>
    private void ReleaseClaims()
    {
        foreach (var h in _pendingKnown) _inflight.TryRemove(h, out _);
        _pendingKnown.Clear();
        _batch.Clear();
        _batchCommitted.Set();
        _batchCommitted = new ManualResetEventSlim();
    }

    public void Dispose()
    {
        _codec.Dispose();
        _batch.Dispose();
        _version.Dispose();
        ArrayPool<byte>.Shared.Return(_buf);
        if (_baseRaw != null) ArrayPool<byte>.Shared.Return(_baseRaw);
        _baseRaw = null;
    }
}
