using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Query;

/// <summary>
/// State at a moment T: every path's newest version &lt;= T, minus deletions (whiteouts and absences), minus
/// everything an ancestor deleted at or after the moment it was captured (a deleted, absent or replaced-by-a-file
/// parent directory at tw hides versions with time &lt;= tw; a directory that became opaque at to hides versions
/// with time &lt; to). So one absence record for a removed or renamed directory is enough for its whole subtree.
/// </summary>
public static class StateQuery
{
    /// <summary>Times at which a directory removed what was below it.</summary>
    private struct KillTimes
    {
        public long Whiteout;   // an ancestor deleted or turned into a non-directory at tw hides versions with time <= tw
        public long Replace;    // an ancestor turning opaque at to hides versions with time < to
    }

    public static RecordingState At(RecordingStore store, ulong rec, long at, ReadOnlySpan<byte> subtree = default, bool withChunks = false)
    {
        var state = new RecordingState { At = at };
        var kills = new Dictionary<string, KillTimes>(StringComparer.Ordinal);
        var prefix = Keys.VersionSubtreePrefix(rec, subtree);
        var end = Keys.PrefixEnd(prefix);
        var ro = new ReadOptions();
        if (end != null) ro.SetIterateUpperBound(end);

        byte[] curPath = [];
        byte[]? candValue = null;
        long candTime = 0;
        KillTimes curKill = new() { Whiteout = long.MinValue, Replace = long.MinValue };
        bool any = false;

        void FinishPath()
        {
            if (!any) return;
            var key = RawPath.Key(curPath);
            if (curKill.Whiteout != long.MinValue || curKill.Replace != long.MinValue) kills[key] = curKill;
            if (candValue != null)
            {
                var v = Records.DecodeVersion(curPath, candTime, candValue, withChunks);
                if (v.IsDeleted) state.Tombstones[key] = v;
                else state.Entries[key] = v;
            }
        }

        using (var it = store.Db.NewIterator(store.Versions, ro))
        {
            for (it.Seek(prefix); it.Valid(); it.Next())
            {
                var k = it.GetKeySpan();
                var path = Keys.VersionKeyPath(k);
                long t = Keys.VersionKeyTime(k);
                if (!any || !path.SequenceEqual(curPath))
                {
                    FinishPath();
                    any = true;
                    curPath = path.ToArray();
                    candValue = null;
                    curKill = new() { Whiteout = long.MinValue, Replace = long.MinValue };
                }
                if (t > at) continue;
                var value = it.GetValueSpan();
                candValue = value.ToArray();
                candTime = t;
                // A whiteout, an absence, or any non-directory (a symlink or file replacing a directory), ends what was below.
                if (value.Length > 1 && value[1] != (byte)EntryType.Directory) curKill.Whiteout = t;
                else if (value.Length > 2 && (value[2] & 2) != 0) curKill.Replace = t;
            }
            FinishPath();
        }

        // Ancestors of the subtree root (and the root itself) can also hide what is below.
        if (subtree.Length > 0)
        {
            foreach (var anc in SelfAndAncestors(subtree))
            {
                var kt = KillsOf(store, rec, anc, at);
                if (kt.Whiteout != long.MinValue || kt.Replace != long.MinValue) kills[RawPath.Key(anc)] = kt;
            }
        }
        if (kills.Count == 0) return state;

        List<string>? hidden = null;
        foreach (var (key, v) in state.Entries)
        {
            if (HiddenByAncestor(key, v.Time, kills)) (hidden ??= []).Add(key);
        }
        if (hidden != null) foreach (var k in hidden) state.Entries.Remove(k);
        // A deletion below a deleted directory is history, not state (an export must not write a whiteout there).
        hidden = null;
        foreach (var (key, v) in state.Tombstones)
        {
            if (HiddenByAncestor(key, v.Time, kills)) (hidden ??= []).Add(key);
        }
        if (hidden != null) foreach (var k in hidden) state.Tombstones.Remove(k);
        return state;
    }

    private static bool HiddenByAncestor(string key, long time, Dictionary<string, KillTimes> kills)
    {
        for (int i = key.IndexOf('/'); i >= 0; i = key.IndexOf('/', i + 1))
        {
            if (kills.TryGetValue(key[..i], out var kt) && (kt.Whiteout >= time || kt.Replace > time)) return true;
        }
        return false;
    }

    private static KillTimes KillsOf(RecordingStore store, ulong rec, byte[] path, long at)
    {
        var kt = new KillTimes { Whiteout = long.MinValue, Replace = long.MinValue };
        foreach (var v in store.VersionsOf(rec, path, at, withChunks: false))
        {
            if (v.Type != EntryType.Directory) kt.Whiteout = v.Time;
            else if (v.ReplacesBelow) kt.Replace = v.Time;
        }
        return kt;
    }

    private static IEnumerable<byte[]> SelfAndAncestors(ReadOnlySpan<byte> path)
    {
        var list = new List<byte[]>();
        for (int i = 0; i < path.Length; i++)
            if (path[i] == '/') list.Add(path[..i].ToArray());
        list.Add(path.ToArray());
        return list;
    }

    /// <summary>One path at a moment (null when absent or deleted), without reading the whole recording.</summary>
    public static FileVersion? Find(RecordingStore store, ulong rec, ReadOnlySpan<byte> path, long at, bool withChunks = true)
    {
        var v = store.LatestVersionOf(rec, path, at, withChunks);
        if (v == null || v.IsDeleted) return null;
        for (int i = 0; i < path.Length; i++)
        {
            if (path[i] != '/') continue;
            var kt = KillsOf(store, rec, path[..i].ToArray(), at);
            if (kt.Whiteout >= v.Time || kt.Replace > v.Time) return null;
        }
        return v;
    }
}
