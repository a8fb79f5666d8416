using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Maintenance;

public sealed class RetentionPolicy
{
    /// <summary>Keep only the newest N recordings.</summary>
    public int? KeepLast;
    /// <summary>Drop the oldest recordings until the kept ones' stored bytes fit.</summary>
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
/// Retention, then mark-and-sweep: mark every chunk a remaining version references, sweep the rest.
/// Needs the write lock (no ingest runs meanwhile), so a chunk cannot become referenced during the sweep.
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
            long total = keep.Sum(r => r.StoredBytes);
            while (keep.Count > 0 && total > max)
            {
                var oldest = keep[^1];
                keep.RemoveAt(keep.Count - 1);
                total -= oldest.StoredBytes;
                result.Dropped.Add(oldest);
            }
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
