using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Query;

public enum ChangeKind { Added, Modified, Deleted, Renamed, Metadata }

public sealed record DiffRow(ChangeKind Change, byte[] Path, byte[]? FromPath);

/// <summary>What changed between two moments, one row per path.</summary>
public static class DiffQuery
{
    public static List<DiffRow> Between(RecordingStore store, ulong rec, long t1, long t2)
    {
        var a = StateQuery.At(store, rec, t1, withChunks: true);
        var b = StateQuery.At(store, rec, t2, withChunks: true);
        var added = new List<FileVersion>();
        var deleted = new List<FileVersion>();
        var rows = new List<DiffRow>();

        foreach (var (key, nv) in b.Entries)
        {
            if (!a.Entries.TryGetValue(key, out var ov)) { added.Add(nv); continue; }
            if (ov.Type == nv.Type && !ov.SameContent(nv)) rows.Add(new(ChangeKind.Modified, nv.Path, null));
            else if (!ov.SameMetadata(nv) || ov.Type != nv.Type) rows.Add(new(ChangeKind.Metadata, nv.Path, null));
        }
        foreach (var (key, ov) in a.Entries)
            if (!b.Entries.ContainsKey(key)) deleted.Add(ov);
        // A path whose first version ever is a whiteout after T1 was a file of the image (lower layer) at T1: it
        // existed then and is deleted at T2. Whether it was re-created in between does not matter (the two states
        // are compared); a path first created by the recording and deleted again is absent at both moments, and a
        // whiteout that vanished again (an absence now) shows the image's file again.
        foreach (var (key, tomb) in b.Tombstones)
            if (tomb.Type == EntryType.Whiteout && tomb.Time > t1 && !a.Entries.ContainsKey(key) && !a.Tombstones.ContainsKey(key) &&
                store.VersionsOf(rec, tomb.Path, tomb.Time, withChunks: false) is [{ Type: EntryType.Whiteout } first, ..] && first.Time > t1)
                deleted.Add(tomb);

        PairRenames(store, rec, t1, t2, added, deleted, b, rows);
        rows.Sort(static (x, y) => RecordingState.ComparePaths(x.Path, y.Path));
        return rows;
    }

    private static void PairRenames(RecordingStore store, ulong rec, long t1, long t2, List<FileVersion> added,
        List<FileVersion> deleted, RecordingState b, List<DiffRow> rows)
    {
        var usedAdd = new HashSet<FileVersion>(ReferenceEqualityComparer.Instance);
        var usedDel = new HashSet<FileVersion>(ReferenceEqualityComparer.Instance);

        // 1. Rename events name both sides.
        var byKeyAdded = added.ToDictionary(v => RawPath.Key(v.Path), StringComparer.Ordinal);
        var byKeyDeleted = new Dictionary<string, FileVersion>(StringComparer.Ordinal);
        foreach (var d in deleted) byKeyDeleted[RawPath.Key(d.Path)] = d;
        foreach (var e in store.ReadEvents(rec, t1 + 1, t2))
        {
            if (e.Kind != EventKinds.Rename || e.ToPath.Length == 0) continue;
            if (byKeyDeleted.TryGetValue(RawPath.Key(e.Path), out var d) && byKeyAdded.TryGetValue(RawPath.Key(e.ToPath), out var n) &&
                !usedAdd.Contains(n) && !usedDel.Contains(d))
            {
                usedAdd.Add(n); usedDel.Add(d);
                rows.Add(new(ChangeKind.Renamed, n.Path, d.Path));
            }
        }

        // 2. Same content removed and added in the same step (the deletion record has the addition's time).
        var delByContent = new Dictionary<string, List<FileVersion>>(StringComparer.Ordinal);
        foreach (var d in deleted)
        {
            if (usedDel.Contains(d)) continue;
            var tomb = b.Tombstones.GetValueOrDefault(RawPath.Key(d.Path));
            var content = d.IsDeleted ? null : ContentId(d);
            if (content == null || tomb == null) continue;
            var k = content + "@" + tomb.Time;
            if (!delByContent.TryGetValue(k, out var l)) delByContent[k] = l = [];
            l.Add(d);
        }
        foreach (var n in added)
        {
            if (usedAdd.Contains(n)) continue;
            var content = ContentId(n);
            if (content == null || !delByContent.TryGetValue(content + "@" + n.Time, out var l) || l.Count == 0) continue;
            var d = l[0];
            l.RemoveAt(0);
            usedAdd.Add(n); usedDel.Add(d);
            rows.Add(new(ChangeKind.Renamed, n.Path, d.Path));
        }

        // 3. The same inode gone from one name and present at another (rename(2) keeps the inode; so does a renamed
        //    directory, whose children have no deletion record of their own). Inode numbers are reused after a
        //    delete, so a file must also keep its content and a symlink its target.
        var delByInode = new Dictionary<(ulong, EntryType), List<FileVersion>>();
        foreach (var d in deleted)
        {
            if (usedDel.Contains(d) || d.Inode == 0) continue;
            if (!delByInode.TryGetValue((d.Inode, d.Type), out var l)) delByInode[(d.Inode, d.Type)] = l = [];
            l.Add(d);
        }
        foreach (var n in added)
        {
            if (usedAdd.Contains(n) || n.Inode == 0 || !delByInode.TryGetValue((n.Inode, n.Type), out var l)) continue;
            int i = l.FindIndex(d => n.Type is not (EntryType.File or EntryType.Symlink) || d.SameContent(n));
            if (i < 0) continue;
            var d = l[i];
            l.RemoveAt(i);
            usedAdd.Add(n); usedDel.Add(d);
            rows.Add(new(ChangeKind.Renamed, n.Path, d.Path));
        }

        foreach (var n in added) if (!usedAdd.Contains(n)) rows.Add(new(ChangeKind.Added, n.Path, null));
        foreach (var d in deleted) if (!usedDel.Contains(d)) rows.Add(new(ChangeKind.Deleted, d.Path, null));
    }

    /// <summary>Identity of non-trivial content (empty files and directories are too common to mean a rename).</summary>
    private static string? ContentId(FileVersion v) => v.Type switch
    {
        EntryType.File when v.Size > 0 => "f" + Convert.ToBase64String(v.ContentKey()),
        EntryType.Symlink => "l" + Convert.ToBase64String(v.SymlinkTarget),
        _ => null,
    };
}
