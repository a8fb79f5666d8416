using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

public enum NodeKind { File, Dir, Symlink, Fifo, CharDevice }

/// <summary>One file system entry as the tests expect it (or as they read it back from an export).</summary>
public sealed record Node
{
    public required NodeKind Kind { get; init; }
    public uint Mode { get; init; } = 0x1A4;          // permission bits (07777)
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public long MtimeNs { get; init; }
    public byte[] Content { get; init; } = [];        // regular files
    public string Target { get; init; } = "";          // symlinks (raw)
    public (uint Major, uint Minor) Device { get; init; }
    public SortedDictionary<string, byte[]> Xattrs { get; init; } = new(StringComparer.Ordinal);   // user.* only
    /// <summary>Paths with the same non-null group are one inode (hard links).</summary>
    public int? LinkGroup { get; init; }
    /// <summary>Inode number, only for trees read back from disk.</summary>
    public ulong Inode { get; init; }

    public Node Copy() => this with { Xattrs = new SortedDictionary<string, byte[]>(Xattrs, StringComparer.Ordinal) };
    public bool SameXattrs(Node o) => Xattrs.Count == o.Xattrs.Count &&
        Xattrs.All(kv => o.Xattrs.TryGetValue(kv.Key, out var v) && v.AsSpan().SequenceEqual(kv.Value));
}

/// <summary>A whole tree: relative raw path (no leading slash) -> node. The root itself is not an entry.</summary>
public sealed class TreeState
{
    public SortedDictionary<string, Node> Entries { get; } = new(StringComparer.Ordinal);

    public TreeState Clone()
    {
        var t = new TreeState();
        foreach (var (k, v) in Entries) t.Entries[k] = v.Copy();
        return t;
    }

    public IEnumerable<string> Children(string dir) =>
        Entries.Keys.Where(k => RawPath.Parent(k) == dir);
}
