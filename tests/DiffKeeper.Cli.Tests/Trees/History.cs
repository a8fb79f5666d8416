using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

/// <summary>One recorded moment: the container's merged view after the step, and the step's upper-layer changes.</summary>
public sealed record Moment(int Index, TreeState State, StepChanges Changes, List<string> Log);

/// <summary>
/// Generates a random but reproducible history: an initial tree and a sequence of edits of the kinds a container
/// makes (write, append, truncate, delete, replace a directory, chmod/chown, touch, xattrs, rename, type changes).
/// The model is the merged view; each step also yields what its overlay upper layer holds.
/// </summary>
public sealed class History
{
    private readonly Random _rng;
    private TreeState _state = new();
    private TreeState _before = new();
    private StepChanges _step = new();
    private readonly HashSet<string> _recreated = new(StringComparer.Ordinal);
    private List<string> _log = [];
    private int _names, _groups;

    public int ChunkBoundarySize { get; init; } = 256 * 1024;

    public History(int seed) => _rng = new Random(seed);

    public List<Moment> Generate(int steps)
    {
        var moments = new List<Moment>();
        for (int i = 0; i < steps; i++)
        {
            Begin();
            if (i == 0) InitialTree();
            else for (int n = _rng.Next(3, 8); n > 0; n--) RandomEdit();
            moments.Add(new Moment(i, _state.Clone(), Finish(), _log));
        }
        return moments;
    }

    private void Begin()
    {
        _before = _state.Clone();
        _step = new StepChanges();
        _recreated.Clear();
        _log = [];
    }

    // ---- the initial tree ------------------------------------------------------------------------------------

    private void InitialTree()
    {
        for (int i = 0; i < 4; i++) NewDir(RandomDir());
        for (int i = 0; i < 12; i++) NewFile(RandomDir());
        NewFile(RandomDir(), size: 0);
        NewFile(RandomDir(), size: ChunkBoundarySize + _rng.Next(1, 200_000));   // several chunks
        for (int i = 0; i < 3; i++) NewSymlink(RandomDir());
        NewHardLinkPair(RandomDir());
        NewFifo(RandomDir());
        if (_rng.Next(2) == 0) NewCharDevice(RandomDir());
    }

    // ---- edits -----------------------------------------------------------------------------------------------

    private void RandomEdit()
    {
        switch (_rng.Next(17))
        {
            case 0: NewFile(RandomDir()); break;
            case 1: NewDir(RandomDir()); break;
            case 2: NewSymlink(RandomDir()); break;
            case 3: NewHardLinkPair(RandomDir()); break;
            case 4: NewFifo(RandomDir()); break;
            case 5: WithFile(p => EditContent(p, "overwrite", c => Overwrite(c))); break;
            case 6: WithFile(p => EditContent(p, "append", c => [.. c, .. Bytes(_rng.Next(1, 70_000))])); break;
            case 7: WithFile(p => EditContent(p, "truncate", c => c.AsSpan(0, c.Length == 0 ? 0 : _rng.Next(c.Length)).ToArray())); break;
            case 8: WithAny(Delete); break;
            case 9: WithDir(RecreateOpaque); break;
            case 10: WithAny(p => Update(p, "chmod", n => n.Kind == NodeKind.Symlink ? n : n with { Mode = RandomMode(n.Kind) })); break;
            case 11: WithAny(p => Update(p, "chown", n => n with { Uid = RandomId(), Gid = RandomId() })); break;
            case 12: WithAny(p => Update(p, "touch", n => n with { MtimeNs = RandomMtime() })); break;
            case 13: WithAny(SetOrRemoveXattr); break;
            case 14: WithAny(Rename); break;
            case 15: WithAny(ChangeType); break;
            case 16: NewFile(RandomDir(), size: _rng.Next(2) == 0 ? 0 : ChunkBoundarySize * 2 + _rng.Next(100_000)); break;
        }
    }

    private void NewFile(string dir, int? size = null)
    {
        var p = NewPath(dir);
        Put(p, new Node { Kind = NodeKind.File, Content = Bytes(size ?? RandomSize()), Mode = RandomMode(NodeKind.File),
            Uid = RandomId(), Gid = RandomId(), MtimeNs = RandomMtime(), Xattrs = RandomXattrs() }, "create file");
    }

    private void NewDir(string dir)
    {
        var p = NewPath(dir);
        Put(p, new Node { Kind = NodeKind.Dir, Mode = RandomMode(NodeKind.Dir), Uid = RandomId(), Gid = RandomId(),
            MtimeNs = RandomMtime(), Xattrs = RandomXattrs() }, "mkdir");
    }

    private void NewSymlink(string dir)
    {
        var p = NewPath(dir);
        string[] targets = ["../" + "nowhere", "/etc/hostname", "dangling/target", "..", "/", "a b/\u00e9"];
        var existing = _state.Entries.Keys.ToList();
        string target = existing.Count > 0 && _rng.Next(2) == 0
            ? "/" + existing[_rng.Next(existing.Count)]
            : RawPath.FromUtf8(targets[_rng.Next(targets.Length)]);
        Put(p, new Node { Kind = NodeKind.Symlink, Target = target, Uid = RandomId(), Gid = RandomId(), MtimeNs = RandomMtime() }, "symlink");
    }

    private void NewHardLinkPair(string dir)
    {
        int g = ++_groups;
        var node = new Node { Kind = NodeKind.File, Content = Bytes(RandomSize()), Mode = RandomMode(NodeKind.File),
            Uid = RandomId(), Gid = RandomId(), MtimeNs = RandomMtime(), Xattrs = RandomXattrs(), LinkGroup = g };
        Put(NewPath(dir), node, "hard link 1");
        Put(NewPath(RandomDir()), node.Copy(), "hard link 2");
    }

    private void NewFifo(string dir) =>
        Put(NewPath(dir), new Node { Kind = NodeKind.Fifo, Mode = 0x1A4, Uid = RandomId(), Gid = RandomId(), MtimeNs = RandomMtime() }, "mkfifo");

    private void NewCharDevice(string dir) =>
        Put(NewPath(dir), new Node { Kind = NodeKind.CharDevice, Mode = 0x1B6, Device = (1, 3), MtimeNs = RandomMtime() }, "mknod c 1 3");

    private void EditContent(string p, string what, Func<byte[], byte[]> edit) =>
        Update(p, what, n => n with { Content = edit(n.Content), MtimeNs = RandomMtime() });

    private byte[] Overwrite(byte[] c)
    {
        var copy = (byte[])c.Clone();
        if (copy.Length == 0) return Bytes(10);
        int off = _rng.Next(copy.Length), len = Math.Min(_rng.Next(1, 5000), copy.Length - off);
        _rng.NextBytes(copy.AsSpan(off, len));
        return copy;
    }

    private void Delete(string p)
    {
        _state.RemoveSubtree(p);
        _log.Add($"delete /{RawPath.Display(p)}");
    }

    private void RecreateOpaque(string d)
    {
        _state.RemoveSubtree(d);
        Put(d, new Node { Kind = NodeKind.Dir, Mode = RandomMode(NodeKind.Dir), Uid = RandomId(), Gid = RandomId(),
            MtimeNs = RandomMtime(), Xattrs = RandomXattrs() }, "rm -r + mkdir (opaque)");
        _recreated.Add(d);
        for (int i = _rng.Next(0, 3); i > 0; i--) NewFile(d);
    }

    private void SetOrRemoveXattr(string p)
    {
        var n = _state.Entries[p];
        if (n.Kind is not (NodeKind.File or NodeKind.Dir)) return; // user.* xattrs exist only on files and dirs
        Update(p, "xattr", old =>
        {
            var x = new SortedDictionary<string, byte[]>(old.Xattrs, StringComparer.Ordinal);
            if (x.Count > 0 && _rng.Next(2) == 0) x.Remove(x.Keys.First());
            else x["user.k" + _rng.Next(4)] = Bytes(_rng.Next(0, 40));
            return old with { Xattrs = x };
        });
    }

    /// <summary>A rename in an upper layer is a whiteout at the old name and a full copy at the new one.</summary>
    private void Rename(string p)
    {
        var n = _state.Entries[p];
        if (n.Kind == NodeKind.Dir) return;
        var to = NewPath(RandomDir(exclude: p));
        _state.RemoveSubtree(p);
        Put(to, n with { LinkGroup = null }, $"rename /{RawPath.Display(p)} ->");
    }

    private void ChangeType(string p)
    {
        var n = _state.Entries[p];
        _state.RemoveSubtree(p);
        Node replacement = n.Kind == NodeKind.Symlink || n.Kind == NodeKind.Dir
            ? new Node { Kind = NodeKind.File, Content = Bytes(RandomSize()), Mode = 0x1A4, MtimeNs = RandomMtime() }
            : _rng.Next(2) == 0
                ? new Node { Kind = NodeKind.Symlink, Target = RawPath.FromUtf8("replaced/" + _rng.Next(100)), MtimeNs = RandomMtime() }
                : new Node { Kind = NodeKind.Dir, Mode = 0x1ED, MtimeNs = RandomMtime() };
        Put(p, replacement, $"type change {n.Kind} -> {replacement.Kind}");
        if (n.Kind == NodeKind.Dir && replacement.Kind == NodeKind.Dir) _recreated.Add(p);
    }

    // ---- the step's upper layer ------------------------------------------------------------------------------

    private StepChanges Finish()
    {
        var changes = new StepChanges();
        foreach (var p in _step.Written.Where(_state.Entries.ContainsKey)) changes.Written.Add(p);
        foreach (var d in _recreated)
            if (_state.Entries.TryGetValue(d, out var now) && now.Kind == NodeKind.Dir &&
                _before.Entries.TryGetValue(d, out var was) && was.Kind == NodeKind.Dir)
                changes.Opaque.Add(d);
        foreach (var p in _before.Entries.Keys.Where(k => !_state.Entries.ContainsKey(k)))
        {
            // Topmost deletions only: below a deleted or replaced directory the upper layer needs nothing.
            var parent = RawPath.Parent(p);
            bool parentKept = parent.Length == 0 ||
                (_state.Entries.TryGetValue(parent, out var pn) && pn.Kind == NodeKind.Dir && !changes.Opaque.Contains(parent) &&
                 _before.Entries[parent].Kind == NodeKind.Dir && !ReplacedThisStep(parent));
            if (parentKept) changes.Whiteouts.Add(p);
        }
        // A path written and also a whiteout cannot be: written wins (it exists now).
        changes.Whiteouts.ExceptWith(changes.Written);
        return changes;
    }

    // A directory removed and created again (but not marked opaque, e.g. through a type change round trip) has no
    // old children left to hide; treat it like an opaque one for the whiteout rule.
    private bool ReplacedThisStep(string dir) => _recreated.Contains(dir);

    // ---- helpers ---------------------------------------------------------------------------------------------

    private void Put(string p, Node n, string what)
    {
        _state.Entries[p] = n;
        _step.Written.Add(p);
        _log.Add($"{what} /{RawPath.Display(p)}");
    }

    private void Update(string p, string what, Func<Node, Node> change)
    {
        var before = _state.Entries[p];
        var after = change(before);
        // An upper layer copies up one name: a hard link stops being shared with its other names.
        if (before.LinkGroup is int g)
        {
            foreach (var k in _state.Entries.Where(e => e.Value.LinkGroup == g).Select(e => e.Key).ToList())
                _state.Entries[k] = _state.Entries[k] with { LinkGroup = null };
            after = after with { LinkGroup = null };
        }
        Put(p, after, what);
    }

    private void WithAny(Action<string> edit)
    {
        var keys = _state.Entries.Keys.ToList();
        if (keys.Count > 0) edit(keys[_rng.Next(keys.Count)]);
    }

    private void WithFile(Action<string> edit)
    {
        var keys = _state.Entries.Where(e => e.Value.Kind == NodeKind.File).Select(e => e.Key).ToList();
        if (keys.Count > 0) edit(keys[_rng.Next(keys.Count)]);
    }

    private void WithDir(Action<string> edit)
    {
        var keys = _state.Entries.Where(e => e.Value.Kind == NodeKind.Dir).Select(e => e.Key).ToList();
        if (keys.Count > 0) edit(keys[_rng.Next(keys.Count)]);
    }

    private string RandomDir(string? exclude = null)
    {
        var dirs = _state.Entries.Where(e => e.Value.Kind == NodeKind.Dir && (exclude is null || !RawPath.IsUnder(e.Key, exclude)))
            .Select(e => e.Key).Prepend("").ToList();
        return dirs[_rng.Next(dirs.Count)];
    }

    private static readonly string[] NameStyles =
        ["plain", "with space", "new\nline", "tab\there", "caf\u00e9", "-dash", ".hidden", "back\\slash", "q\"uote", "star*"];

    private string NewPath(string dir)
    {
        int n = ++_names;
        string name = _rng.Next(8) switch
        {
            0 => RawPath.FromBytes([0x66, 0xFF, 0xFE, (byte)'_']) + n,   // not UTF-8
            1 => RawPath.FromBytes([0xC3, (byte)'x']) + n,               // a truncated UTF-8 sequence
            2 => new string('L', 120) + n,                               // long name
            _ => RawPath.FromUtf8(NameStyles[_rng.Next(NameStyles.Length)]) + n,
        };
        return dir.Length == 0 ? name : dir + "/" + name;
    }

    private int RandomSize() => _rng.Next(10) switch
    {
        0 => 0,
        < 5 => _rng.Next(1, 200),
        < 9 => _rng.Next(200, 40_000),
        _ => _rng.Next(40_000, 400_000),
    };

    /// <summary>Half random, half repetitive: compressible and incompressible parts, both chunked.</summary>
    private byte[] Bytes(int size)
    {
        var b = new byte[size];
        _rng.NextBytes(b);
        for (int i = 0; i < size / 2; i++) b[i] = (byte)('a' + (b[i] & 7));
        return b;
    }

    private uint RandomMode(NodeKind kind)
    {
        uint[] fileModes = [0x1A4, 0x180, 0x1ED, 0x124, 0x1C0, 0x9ED /* 04755 */, 0x5A4 /* 02644 */];
        uint[] dirModes = [0x1ED, 0x1C0, 0x1E8, 0x3FF /* 01777 */, 0x16D];
        var modes = kind == NodeKind.Dir ? dirModes : fileModes;
        return modes[_rng.Next(modes.Length)];
    }

    private uint RandomId() => (uint)(_rng.Next(3) switch { 0 => 0, 1 => 1000, _ => 4242 });

    /// <summary>Mtimes with nanoseconds between 2001 and 2033.</summary>
    private long RandomMtime() => 1_000_000_000L * _rng.NextInt64(1_000_000_000, 2_000_000_000) + _rng.Next(1_000_000_000);

    private SortedDictionary<string, byte[]> RandomXattrs()
    {
        var x = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        for (int i = _rng.Next(3) - 1; i > 0; i--) x["user.attr" + _rng.Next(5)] = Bytes(_rng.Next(0, 64));
        if (_rng.Next(6) == 0) x["user.empty"] = [];
        return x;
    }
}
