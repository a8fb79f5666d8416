using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

/// <summary>What one step changed, in overlay terms.</summary>
public sealed class StepChanges
{
    /// <summary>Paths whose final state this step is new (present in the state after the step).</summary>
    public HashSet<string> Written { get; } = new(StringComparer.Ordinal);
    /// <summary>Paths deleted this step (topmost only): a whiteout each.</summary>
    public HashSet<string> Whiteouts { get; } = new(StringComparer.Ordinal);
    /// <summary>Directories deleted and made again this step: trusted.overlay.opaque=y.</summary>
    public HashSet<string> Opaque { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Writes a directory that looks like an overlay upper layer holding one step's changes: changed entries with their
/// copied-up parents (carrying the parents' current metadata), whiteouts (char 0:0) for deletions, and opaque
/// directories for directories that were replaced.
/// </summary>
public static class UpperLayer
{
    public static void Write(string dir, TreeState state, StepChanges changes)
    {
        var create = new SortedSet<string>(StringComparer.Ordinal);
        void WithAncestors(string p)
        {
            for (var a = RawPath.Parent(p); a.Length > 0; a = RawPath.Parent(a)) create.Add(a);
        }
        foreach (var p in changes.Written.Concat(changes.Opaque)) { create.Add(p); WithAncestors(p); }
        foreach (var d in changes.Opaque)
            foreach (var k in state.Entries.Keys.Where(k => RawPath.IsUnder(k, d))) { create.Add(k); }
        foreach (var w in changes.Whiteouts) WithAncestors(w);

        // Parents before children.
        var ordered = create.OrderBy(RawPath.Depth).ThenBy(p => p, StringComparer.Ordinal).ToList();
        var firstOfGroup = new Dictionary<int, string>();
        foreach (var rel in ordered)
        {
            var node = state.Entries[rel];
            string full = dir + "/" + rel;
            if (node.LinkGroup is int g && firstOfGroup.TryGetValue(g, out var first)) { Posix.HardLink(dir + "/" + first, full); continue; }
            if (node.LinkGroup is int g2) firstOfGroup[g2] = rel;
            switch (node.Kind)
            {
                case NodeKind.Dir: Posix.MkDir(full); break;
                case NodeKind.File: Posix.WriteFile(full, node.Content); break;
                case NodeKind.Symlink: Posix.Symlink(node.Target, full); break;
                case NodeKind.Fifo: Posix.MkNod(full, Posix.S_IFIFO | 0x180); break;
                case NodeKind.CharDevice: Posix.MkNod(full, Posix.S_IFCHR | 0x180, node.Device.Major, node.Device.Minor); break;
            }
        }
        foreach (var w in changes.Whiteouts) Posix.MkWhiteout(dir + "/" + w);
        foreach (var d in changes.Opaque) Posix.SetXattr(dir + "/" + d, "trusted.overlay.opaque", "y"u8);

        // Metadata after content: chown clears set-id bits, so chmod follows it.
        foreach (var rel in ordered)
        {
            var node = state.Entries[rel];
            string full = dir + "/" + rel;
            Posix.LChown(full, node.Uid, node.Gid);
            if (node.Kind != NodeKind.Symlink) Posix.Chmod(full, node.Mode);
            foreach (var (k, v) in node.Xattrs) Posix.SetXattr(full, k, v);
        }
        // Times last and deepest first: creating a child changes its directory's mtime.
        foreach (var rel in ordered.OrderByDescending(RawPath.Depth))
            Posix.SetMtime(dir + "/" + rel, state.Entries[rel].MtimeNs);
    }
}
