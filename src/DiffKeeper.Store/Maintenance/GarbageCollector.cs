using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Maintenance;

public sealed class RetentionPolicy
{
    /// <summary>Keep only the newest N recordings.</summary>
    public int? KeepLast;
    /// <summary>Drop the oldest recordings until the store (chunks and metadata) fits in this many bytes.</summary>
    public long? MaxBytes;
    /// <summary>Drop recordings whose container exited with status 0.</summary>
    public bool KeepFailedOnly;
    public bool DryRun;
}

public sealed class GcResult
{
    public List<RecordingInfo> Dropped = [];
    public long ChunksRemoved;
    public long BytesFreed;
    public long ChunksKept;
}

/// <summary>
/// Retention, then mark-and-sweep: mark every chunk a remaining version references and every delta base those
/// need, sweep the rest. Needs the write lock (no ingest runs meanwhile), so a chunk cannot become referenced
/// during the sweep.
/// </summary>
public static class GarbageCollector
{
    public static GcResult Run(RecordingStore store, RetentionPolicy policy)
    {
        var result = new GcResult();
        var all = store.ListRecordings();
        all.Sort((a, b) => b.Start.CompareTo(a.Start)); // newest first
        var keep = new List<RecordingInfo>();
        foreach (var r in all)
        {
            if (policy.KeepFailedOnly && r.ExitStatus == 0) result.Dropped.Add(r);
            else keep.Add(r);
        }
        if (policy.KeepLast is int n && keep.Count > n)
        {
            result.Dropped.AddRange(keep.Skip(n));
            keep = keep.Take(n).ToList();
        }
        if (policy.MaxBytes is long max)
        {
            int drop = OldestToDrop(store, keep, result.Dropped, max);
            for (int i = 0; i < drop; i++) result.Dropped.Add(keep[keep.Count - 1 - i]);
            keep.RemoveRange(keep.Count - drop, drop);
        }

        if (!policy.DryRun)
            foreach (var r in result.Dropped) DropRecording(store, r.Id);

        // Mark.
        var dropped = result.Dropped.Select(r => r.Id).ToHashSet();
        var live = new HashSet<Hash256>();
        foreach (var (k, v) in store.RawRange(store.Versions, []))
        {
            if (policy.DryRun && dropped.Contains(Keys.RecordingOf(k))) continue;
            var (path, time) = Keys.SplitVersion(k);
            foreach (var c in Records.DecodeVersion(path, time, v).Chunks)
                if (!c.IsHole) live.Add(c.Hash);
        }
        // A delta chunk keeps its base alive (and the base's base): which chunks are deltas is only in their
        // stored values, so read them once (the sweep reads every value anyway).
        var baseOf = new Dictionary<Hash256, Hash256>();
        using (var it = store.Db.NewIterator(store.Chunks))
        {
            for (it.SeekToFirst(); it.Valid(); it.Next())
            {
                var key = it.GetKeySpan();
                if (key.Length == 32 && Chunking.ChunkCodec.TryGetBase(it.GetValueSpan(), out var b)) baseOf[new Hash256(key)] = b;
            }
        }
        if (baseOf.Count > 0) live.UnionWith(Doctor.LiveBases(live, baseOf));
        // Sweep.
        var batch = new WriteBatch();
        using (var it = store.Db.NewIterator(store.Chunks))
        {
            for (it.SeekToFirst(); it.Valid(); it.Next())
            {
                var key = it.GetKeySpan();
                if (key.Length != 32 || live.Contains(new Hash256(key))) { result.ChunksKept++; continue; }
                result.ChunksRemoved++;
                result.BytesFreed += it.GetValueSpan().Length;
                if (!policy.DryRun) batch.Delete(key, store.Chunks);
                if (batch.Count() >= 4096) { store.Db.Write(batch, store.Write); batch.Clear(); }
            }
        }
        if (!policy.DryRun)
        {
            store.Db.Write(batch, store.Write);
            // Compaction drops the deleted keys; blob GC then rewrites blob files that lost their chunks.
            if (result.ChunksRemoved > 0 || result.Dropped.Count > 0)
            {
                store.Flush();
                store.Db.CompactRange(store.Chunks);
                store.Db.CompactRange(store.Versions);
                store.Db.CompactRange(store.Events);
            }
        }
        batch.Dispose();
        return result;
    }

    /// <summary>
    /// How many of the oldest recordings in <paramref name="keep"/> (newest first) must go for the store to fit in
    /// <paramref name="max"/> bytes. Recordings share chunks, so a recording's own "stored bytes" (what it added)
    /// says little about what dropping it frees: a chunk is freed only when the last recording using it goes.
    /// Each chunk is therefore assigned to the newest recording that uses it (in drop order: oldest first); dropping
    /// the k oldest frees the chunks assigned to them. Chunk sizes on disk are their raw lengths scaled by the
    /// chunk family's overall ratio (reading every stored value to learn its size would read the whole store).
    /// </summary>
    private static int OldestToDrop(RecordingStore store, List<RecordingInfo> keep, List<RecordingInfo> alreadyDropped, long max)
    {
        long total = store.ApproximateSize(store.Chunks) + store.ApproximateSize(store.Versions) +
                     store.ApproximateSize(store.Events) + store.ApproximateSize(store.Recordings);
        if (total <= max || keep.Count == 0) return 0;
        var rank = new Dictionary<ulong, int>();
        for (int i = 0; i < keep.Count; i++) rank[keep[i].Id] = keep.Count - 1 - i; // the oldest goes first: rank 0
        var gone = alreadyDropped.Select(r => r.Id).ToHashSet();
        var owner = new Dictionary<Hash256, (int Rank, int Length)>();
        foreach (var (k, v) in store.RawRange(store.Versions, []))
        {
            ulong rec = Keys.RecordingOf(k);
            if (gone.Contains(rec)) continue;
            int r = rank.TryGetValue(rec, out var x) ? x : int.MaxValue; // versions of no listed recording are never dropped here
            var (path, time) = Keys.SplitVersion(k);
            foreach (var c in Records.DecodeVersion(path, time, v).Chunks)
            {
                if (c.IsHole) continue;
                if (!owner.TryGetValue(c.Hash, out var o) || o.Rank < r) owner[c.Hash] = (r, (int)Math.Min(c.Length, int.MaxValue));
            }
        }
        long rawTotal = 0;
        var freedRaw = new long[keep.Count];
        foreach (var (rnk, len) in owner.Values)
        {
            rawTotal += len;
            if (rnk != int.MaxValue) freedRaw[rnk] += len;
        }
        double perRawByte = rawTotal == 0 ? 0 : (double)store.ApproximateSize(store.Chunks) / rawTotal;
        double freed = 0;
        for (int k = 0; k < keep.Count; k++)
        {
            freed += freedRaw[k] * perRawByte;
            // Metadata of a dropped recording is small against its chunks: counted as freed only with the last one.
            if (total - freed <= max) return k + 1;
        }
        return keep.Count;
    }

    public static void DropRecording(RecordingStore store, ulong rec)
    {
        var prefix = Keys.Recording(rec);
        var end = Keys.PrefixEnd(prefix)!;
        using var batch = new WriteBatch();
        batch.DeleteRange(prefix, end, store.Versions);
        batch.DeleteRange(prefix, end, store.Events);
        batch.Delete(prefix, store.Recordings);
        store.Db.Write(batch, store.Write);
    }
}
