using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

/// <summary>What an export is compared on; a tar extracted by GNU tar does not restore symlink times, for one.</summary>
public sealed record CompareOptions(bool SymlinkMtime = true, bool Ownership = true, bool HardLinks = true, bool Mtime = true);

/// <summary>Lists every way an actual tree differs from the expected one, one readable line per difference.</summary>
public static class TreeComparer
{
    public static List<string> Differences(TreeState expected, TreeState actual, CompareOptions? options = null)
    {
        options ??= new CompareOptions();
        var diffs = new List<string>();
        foreach (var (path, want) in expected.Entries)
        {
            string p = RawPath.Display(path);
            if (!actual.Entries.TryGetValue(path, out var got)) { diffs.Add($"missing: /{p} ({want.Kind})"); continue; }
            if (got.Kind != want.Kind) { diffs.Add($"type: /{p} expected {want.Kind}, got {got.Kind}"); continue; }
            if (want.Kind == NodeKind.File && !got.Content.AsSpan().SequenceEqual(want.Content))
                diffs.Add($"content: /{p} expected {want.Content.Length} bytes, got {got.Content.Length} bytes" +
                          (got.Content.Length == want.Content.Length ? $" (first difference at {FirstDifference(want.Content, got.Content)})" : ""));
            if (want.Kind == NodeKind.Symlink && got.Target != want.Target)
                diffs.Add($"target: /{p} expected '{RawPath.Display(want.Target)}', got '{RawPath.Display(got.Target)}'");
            if (want.Kind != NodeKind.Symlink && got.Mode != want.Mode)
                diffs.Add($"mode: /{p} expected {Convert.ToString(want.Mode, 8)}, got {Convert.ToString(got.Mode, 8)}");
            if (options.Ownership && (got.Uid != want.Uid || got.Gid != want.Gid))
                diffs.Add($"owner: /{p} expected {want.Uid}:{want.Gid}, got {got.Uid}:{got.Gid}");
            if (options.Mtime && (want.Kind != NodeKind.Symlink || options.SymlinkMtime) && got.MtimeNs != want.MtimeNs)
                diffs.Add($"mtime: /{p} expected {want.MtimeNs} ns, got {got.MtimeNs} ns");
            if (want.Kind == NodeKind.CharDevice && got.Device != want.Device)
                diffs.Add($"device: /{p} expected {want.Device}, got {got.Device}");
            if (!want.SameXattrs(got))
                diffs.Add($"xattrs: /{p} expected [{Describe(want.Xattrs)}], got [{Describe(got.Xattrs)}]");
        }
        foreach (var path in actual.Entries.Keys.Where(k => !expected.Entries.ContainsKey(k)))
            diffs.Add($"unexpected: /{RawPath.Display(path)} ({actual.Entries[path].Kind})");
        if (options.HardLinks)
            foreach (var group in expected.Entries.Where(e => e.Value.LinkGroup is not null).GroupBy(e => e.Value.LinkGroup))
            {
                var inodes = group.Select(e => actual.Entries.TryGetValue(e.Key, out var n) ? n.Inode : 0).Distinct().ToList();
                if (group.Count() > 1 && inodes.Count > 1)
                    diffs.Add($"hardlink: {string.Join(", ", group.Select(e => "/" + RawPath.Display(e.Key)))} should be one inode");
            }
        return diffs;
    }

    private static int FirstDifference(byte[] a, byte[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++) if (a[i] != b[i]) return i;
        return n;
    }

    private static string Describe(SortedDictionary<string, byte[]> x) =>
        string.Join(", ", x.Select(kv => $"{kv.Key}={Convert.ToBase64String(kv.Value)}"));
}
