using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Store.Maintenance;

public sealed class DoctorReport
{
    public List<string> Problems = [];
    public long Recordings, Versions, Events, Chunks, ReferencedChunks, UnreferencedChunks, ChunkBytes;
    public bool Healthy => Problems.Count == 0;
}

/// <summary>
/// Checks a store: records decode, every referenced chunk exists and hashes right (a delta chunk together with its
/// chain of bases), no orphan metadata.
/// </summary>
public static class Doctor
{
    private const int MaxProblems = 1000;

    public static DoctorReport Check(RecordingStore store, Action<long, long>? progress = null)
    {
        var report = new DoctorReport();
        try { CheckInto(store, report, progress); }
        catch (Rocks.RocksException e)
        {
            // Damage RocksDB itself detects (block or blob checksums) while we read: a finding, not a crash.
            Problem(report, "store read error: " + e.Message);
        }
        return report;
    }

    private static void CheckInto(RecordingStore store, DoctorReport report, Action<long, long>? progress)
    {
        var recs = new HashSet<ulong>();
        foreach (var (k, v) in store.RawRange(store.Recordings, []))
        {
            report.Recordings++;
            try
            {
                var r = Records.DecodeRecording(v);
                if (k.Length != 8 || r.Id != Keys.RecordingOf(k)) Problem(report, $"recording record {Convert.ToHexString(k)} has a mismatched id");
                recs.Add(Keys.RecordingOf(k));
            }
            catch (CorruptDataException e) { Problem(report, $"recording record {Convert.ToHexString(k)}: {e.Message}"); }
        }

        var referenced = new Dictionary<Hash256, string>();
        var orphans = new HashSet<ulong>();
        foreach (var (k, v) in store.RawRange(store.Versions, []))
        {
            report.Versions++;
            if (k.Length < 17) { Problem(report, "a version key is malformed"); continue; }
            var rec = Keys.RecordingOf(k);
            if (!recs.Contains(rec) && orphans.Add(rec)) Problem(report, $"versions of missing recording {RecordingInfo.FormatId(rec)} (orphan metadata)");
            try
            {
                var (path, time) = Keys.SplitVersion(k);
                var ver = Records.DecodeVersion(path, time, v);
                foreach (var c in ver.Chunks)
                    if (!c.IsHole) referenced.TryAdd(c.Hash, "/" + RawPath.Escape(path));
            }
            catch (CorruptDataException e) { Problem(report, $"a version of recording {RecordingInfo.FormatId(rec)}: {e.Message}"); }
        }
        var eventOrphans = new HashSet<ulong>();
        foreach (var (k, v) in store.RawRange(store.Events, []))
        {
            report.Events++;
            var rec = k.Length >= 8 ? Keys.RecordingOf(k) : 0;
            if (!recs.Contains(rec) && eventOrphans.Add(rec)) Problem(report, $"events of missing recording {RecordingInfo.FormatId(rec)} (orphan metadata)");
            try { Records.DecodeEvent(0, 0, v); }
            catch (CorruptDataException e) { Problem(report, $"an event of recording {RecordingInfo.FormatId(rec)}: {e.Message}"); }
        }

        report.ReferencedChunks = referenced.Count;
        using var codec = new ChunkCodec();
        var raw = new byte[FastCdc.DefaultMax * 2];
        var seen = new HashSet<Hash256>();
        // Chunks no version names directly: unreferenced unless a referenced delta needs them as its base.
        var unnamed = new List<Hash256>();
        var baseOf = new Dictionary<Hash256, Hash256>();
        long done = 0;
        using (var it = store.Db.NewIterator(store.Chunks))
        {
            for (it.SeekToFirst(); it.Valid(); it.Next())
            {
                report.Chunks++;
                var key = it.GetKeySpan();
                if (key.Length != 32) { Problem(report, "a chunk key is malformed"); continue; }
                var h = new Hash256(key);
                var value = it.GetValueSpan();
                report.ChunkBytes += value.Length;
                if (ChunkCodec.TryGetBase(value, out var baseHash)) baseOf[h] = baseHash;
                if (!referenced.TryGetValue(h, out var user)) { unnamed.Add(h); continue; }
                seen.Add(h);
                // Resolves and verifies the delta chain too: a missing or damaged base is reported here.
                try { codec.DecodeVerified(h, value, raw, store.ChunkSource); }
                catch (CorruptDataException e) { Problem(report, $"{e.Message} (used by {user})"); }
                if ((++done & 1023) == 0) progress?.Invoke(done, referenced.Count);
            }
        }
        foreach (var (h, user) in referenced)
            if (!seen.Contains(h)) Problem(report, $"chunk {h} is missing (used by {user})");
        var bases = LiveBases(referenced.Keys, baseOf);
        foreach (var h in unnamed)
            if (!bases.Contains(h)) report.UnreferencedChunks++;
    }

    /// <summary>Every chunk some chunk of <paramref name="live"/> needs as a (transitive) delta base.</summary>
    internal static HashSet<Hash256> LiveBases(IEnumerable<Hash256> live, Dictionary<Hash256, Hash256> baseOf)
    {
        var bases = new HashSet<Hash256>();
        foreach (var h in live)
        {
            // Chains are at most ChunkCodec.MaxDeltaDepth long; the bound also stops a (corrupt) cycle.
            var cur = h;
            for (int i = 0; i <= ChunkCodec.MaxDeltaDepth && baseOf.TryGetValue(cur, out var b) && bases.Add(b); i++) cur = b;
        }
        return bases;
    }

    private static void Problem(DoctorReport r, string what)
    {
        if (r.Problems.Count < MaxProblems) r.Problems.Add(what);
        else if (r.Problems.Count == MaxProblems) r.Problems.Add("… more problems not listed");
    }
}
