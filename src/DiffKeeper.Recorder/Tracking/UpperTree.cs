using DiffKeeper.Recorder.Native;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>One name in a container's upper directory, as the daemon last saw it.</summary>
internal sealed class UpperNode
{
    public byte[] Name = [];
    public UpperNode? Parent;
    public ulong Ino;
    public bool IsDir;
    /// <summary>Birth time of the inode (0 = unknown): the same inode number with another birth time is a new file.</summary>
    public long Btime;
    /// <summary>Children by name (Latin-1 key of the raw bytes); directories only.</summary>
    public Dictionary<string, UpperNode>? Children;
    /// <summary>lstat taken just before the last capture: a re-check compares against it.</summary>
    public StatInfo Last;
    /// <summary>Time of the newest version written for this path (versions of one path get increasing times).</summary>
    public long LastVersionTime = long.MinValue;
    /// <summary>lstat at the daemon's last live look at the file (captured or left waiting; Inode 0: never looked):
    /// a file whose size or times moved since changed again (<see cref="FrameProcessor"/>, "busy large files").</summary>
    public StatInfo Seen;
    /// <summary><see cref="TrackedContainer.FrameSeq"/> of the last frame that found this file changed (an event
    /// for it, or its lstat moved since <see cref="Seen"/>).</summary>
    public long ChangedInFrame;
    /// <summary>Frame time since which a busy large file's capture waits (0: it does not wait).</summary>
    public long WaitingSince;

    /// <summary>Path relative to the upper directory (empty for the root), rebuilt from the parents so a
    /// directory rename moves the whole subtree at once.</summary>
    public byte[] Path
    {
        get
        {
            if (Parent == null) return [];
            int len = 0;
            for (var n = this; n.Parent != null; n = n.Parent) len += n.Name.Length + (n.Parent.Parent != null ? 1 : 0);
            var b = new byte[len];
            int end = len;
            for (var n = this; n.Parent != null; n = n.Parent)
            {
                end -= n.Name.Length;
                n.Name.CopyTo(b, end);
                if (n.Parent.Parent != null) b[--end] = (byte)'/';
            }
            return b;
        }
    }

    public bool IsRoot;
    /// <summary>A strict ancestor of a watched directory (`diffkeeper record --dir`): only its entries on the way to
    /// a watched directory are mapped and recorded, never its other entries.</summary>
    public bool Partial;
}

/// <summary>
/// The (inode → names) map of one container's upper directory and each directory's children with their inodes:
/// what turns a dirty inode from the kernel into path(s), and a dirty directory into created / removed / renamed
/// names. Only the frame thread touches it (and Track before the container is published to it).
/// </summary>
internal sealed class UpperTree
{
    private readonly Dictionary<ulong, List<UpperNode>> _byIno = new();
    public UpperNode Root { get; }
    public byte[] RootPath { get; }
    public ulong Dev { get; private set; }
    public int Count => _byIno.Count;

    /// <summary>Watched directories relative to the root (`diffkeeper record`), null when the whole tree is watched
    /// (a container's upper directory).</summary>
    private readonly byte[][]? _watched;

    public UpperTree(string upperDir, IReadOnlyList<byte[]>? watched = null)
    {
        RootPath = RawPath.EncodeArg(upperDir.Length > 1 ? upperDir.TrimEnd('/') : upperDir);
        if (watched != null && watched.Count > 0 && watched.All(w => w.Length > 0)) _watched = [.. watched];
        Root = new UpperNode { IsDir = true, IsRoot = true, Children = new(StringComparer.Ordinal), Partial = _watched != null };
        if (Dirents.TryLstat(RootPath, out var st))
        {
            Root.Ino = st.Inode;
            Root.Last = st;
            Dev = Libc.MakeDev(st.DevMajor, st.DevMinor);
            Index(Root);
        }
    }

    public byte[] Abs(byte[] rel) => rel.Length == 0 ? RootPath : RootPath is [(byte)'/'] ? [(byte)'/', .. rel] : [.. RootPath, (byte)'/', .. rel];

    /// <summary>Whether <paramref name="rel"/> is a watched directory, below one, or on the way to one.</summary>
    public bool InScope(ReadOnlySpan<byte> rel)
    {
        if (_watched == null || rel.Length == 0) return true;
        foreach (var w in _watched)
            if (IsUnder(rel, w) || IsUnder(w, rel)) return true;
        return false;
    }

    /// <summary>Whether <paramref name="rel"/> is a strict ancestor of a watched directory (a partial node).</summary>
    public bool IsPartial(ReadOnlySpan<byte> rel)
    {
        if (_watched == null) return false;
        foreach (var w in _watched)
            if (w.Length > rel.Length && IsUnder(w, rel)) return true;
        return false;
    }

    /// <summary>Whether path <paramref name="a"/> is <paramref name="b"/> or below it (both relative, raw bytes).</summary>
    private static bool IsUnder(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        b.Length == 0 || (a.StartsWith(b) && (a.Length == b.Length || a[b.Length] == (byte)'/'));

    public IReadOnlyList<UpperNode> Find(ulong ino) => _byIno.TryGetValue(ino, out var l) ? l : [];

    public bool Knows(ulong ino) => _byIno.ContainsKey(ino);

    public UpperNode Add(UpperNode parent, byte[] name, ulong ino, bool isDir)
    {
        var node = new UpperNode { Name = name, Parent = parent, Ino = ino, IsDir = isDir, Children = isDir ? new(StringComparer.Ordinal) : null };
        parent.Children![RawPath.Key(name)] = node;
        Index(node);
        return node;
    }

    /// <summary>Detaches a node and forgets its whole subtree.</summary>
    public void Remove(UpperNode node)
    {
        if (node.Parent != null && node.Parent.Children!.TryGetValue(RawPath.Key(node.Name), out var cur) && cur == node)
            node.Parent.Children.Remove(RawPath.Key(node.Name));
        Forget(node);
    }

    /// <summary>A rename: the same node (and subtree) under a new parent and name.</summary>
    public void Move(UpperNode node, UpperNode newParent, byte[] newName)
    {
        if (node.Parent != null && node.Parent.Children!.TryGetValue(RawPath.Key(node.Name), out var cur) && cur == node)
            node.Parent.Children.Remove(RawPath.Key(node.Name));
        if (newParent.Children!.TryGetValue(RawPath.Key(newName), out var replaced) && replaced != node) Forget(replaced);
        node.Parent = newParent;
        node.Name = newName;
        newParent.Children[RawPath.Key(newName)] = node;
    }

    private void Forget(UpperNode node)
    {
        if (_byIno.TryGetValue(node.Ino, out var l))
        {
            l.Remove(node);
            if (l.Count == 0) _byIno.Remove(node.Ino);
        }
        if (node.Children != null)
            foreach (var c in node.Children.Values) Forget(c);
    }

    private void Index(UpperNode node)
    {
        if (!_byIno.TryGetValue(node.Ino, out var l)) _byIno[node.Ino] = l = new List<UpperNode>(1);
        l.Add(node);
    }

    /// <summary>Every node below <paramref name="node"/> (itself included), parents before children.</summary>
    public static IEnumerable<UpperNode> Walk(UpperNode node)
    {
        var stack = new Stack<UpperNode>();
        stack.Push(node);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            yield return n;
            if (n.Children != null)
                foreach (var c in n.Children.Values.OrderByDescending(c => c.Name, ByteComparer.Instance)) stack.Push(c);
        }
    }
}

internal sealed class ByteComparer : IComparer<byte[]>
{
    public static readonly ByteComparer Instance = new();
    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
