using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

/// <summary>
/// Checks `diffkeeper diff` rows against two model states. How the contract is read where it leaves room:
/// rows below an added/deleted directory are optional (one row for the directory is enough); a rename may show as
/// "renamed" or as deleted + added; a type change may show as metadata, modified, or deleted + added; a change of
/// mtime alone may show as nothing, metadata or modified; anything not changed at all must not show.
/// </summary>
public static class ExpectedDiff
{
    public const string Added = "added", Modified = "modified", Deleted = "deleted", Metadata = "metadata", Renamed = "renamed";

    /// <param name="rows">(change, path, from_path) as printed (renamed expanded by the caller or here).</param>
    public static List<string> Check(TreeState from, TreeState to, IEnumerable<(string Change, string Path, string? FromPath)> rows)
    {
        var actual = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string p, string c) { if (!actual.TryGetValue(p, out var l)) actual[p] = l = []; l.Add(c); }
        foreach (var (change, path, fromPath) in rows)
        {
            if (change == Renamed && fromPath is not null) { Add(fromPath, Deleted); Add(path, Added); }
            else Add(path, change);
        }

        var problems = new List<string>();
        var all = new SortedSet<string>(from.Entries.Keys.Concat(to.Entries.Keys).Concat(actual.Keys), StringComparer.Ordinal);
        foreach (var p in all)
        {
            if (p.Length == 0) continue; // the root: its own metadata comes from the snapshotted directory; not judged
            var got = actual.TryGetValue(p, out var l) ? l : [];
            var (allowed, required) = Expect(from, to, p);
            string shown = "/" + RawPath.Display(p);
            foreach (var g in got.Distinct())
                if (!allowed.Contains(g)) problems.Add($"wrong row: {shown}: got '{g}', expected {Describe(allowed)}");
            if (required && got.Count == 0) problems.Add($"missing row: {shown}: expected {Describe(allowed)}");
        }
        return problems;
    }

    private static string Describe(HashSet<string> allowed) => allowed.Count == 0 ? "no row" : string.Join(" or ", allowed);

    private static (HashSet<string> Allowed, bool Required) Expect(TreeState from, TreeState to, string p)
    {
        bool inFrom = from.Entries.TryGetValue(p, out var a), inTo = to.Entries.TryGetValue(p, out var b);
        if (!inFrom && !inTo) return ([], false);
        if (!inFrom) return ([Added], !ParentAlsoNew(from, to, p));
        if (!inTo) return ([Deleted], !ParentAlsoGone(from, to, p));
        if (a!.Kind != b!.Kind) return ([Metadata, Modified, Deleted, Added], true);
        bool content = a.Kind == NodeKind.File ? !a.Content.AsSpan().SequenceEqual(b.Content)
                     : a.Kind == NodeKind.Symlink ? a.Target != b.Target
                     : a.Kind == NodeKind.CharDevice && a.Device != b.Device;
        if (content) return a.Kind == NodeKind.File ? ([Modified], true) : ([Modified, Metadata], true);
        bool meta = (a.Kind != NodeKind.Symlink && a.Mode != b.Mode) || a.Uid != b.Uid || a.Gid != b.Gid || !a.SameXattrs(b);
        if (meta) return ([Metadata], true);
        if (a.MtimeNs != b.MtimeNs) return ([Metadata, Modified], false);
        return ([], false);
    }

    private static bool ParentAlsoNew(TreeState from, TreeState to, string p)
    {
        var parent = RawPath.Parent(p);
        return parent.Length > 0 && (!from.Entries.TryGetValue(parent, out var n) || n.Kind != NodeKind.Dir);
    }

    private static bool ParentAlsoGone(TreeState from, TreeState to, string p)
    {
        var parent = RawPath.Parent(p);
        return parent.Length > 0 && (!to.Entries.TryGetValue(parent, out var n) || n.Kind != NodeKind.Dir);
    }
}
