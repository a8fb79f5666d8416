using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Trees;

/// <summary>
/// Reads a directory on disk into a <see cref="TreeState"/> (everything, raw names, and the xattrs of files and
/// directories that <c>keepXattr</c> accepts: user.* by default).
/// </summary>
public static class TreeReader
{
    public static TreeState Read(string root, Func<string, bool>? keepXattr = null)
    {
        var tree = new TreeState();
        Walk(root, "", tree, keepXattr ?? (k => k.StartsWith("user.", StringComparison.Ordinal)));
        return tree;
    }

    private static void Walk(string root, string rel, TreeState tree, Func<string, bool> keepXattr)
    {
        string dir = rel.Length == 0 ? root : root + "/" + rel;
        foreach (var name in Posix.ListDir(dir))
        {
            string childRel = rel.Length == 0 ? name : rel + "/" + name;
            string full = root + "/" + childRel;
            var st = Posix.LStat(full);
            var kind = st.Type switch
            {
                Posix.S_IFREG => NodeKind.File,
                Posix.S_IFDIR => NodeKind.Dir,
                Posix.S_IFLNK => NodeKind.Symlink,
                Posix.S_IFIFO => NodeKind.Fifo,
                Posix.S_IFCHR => NodeKind.CharDevice,
                _ => throw new InvalidDataException($"unexpected file type {st.Type:x} at {RawPath.Display(full)}"),
            };
            var xattrs = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
            if (kind is NodeKind.File or NodeKind.Dir)
                foreach (var (k, v) in Posix.ListXattrs(full))
                    if (keepXattr(k)) xattrs[k] = v;
            tree.Entries[childRel] = new Node
            {
                Kind = kind,
                Mode = st.Permissions,
                Uid = st.Uid,
                Gid = st.Gid,
                MtimeNs = st.MtimeNs,
                Content = kind == NodeKind.File ? Posix.ReadFile(full) : [],
                Target = kind == NodeKind.Symlink ? Posix.ReadLink(full) : "",
                Device = kind == NodeKind.CharDevice ? st.Device : default,
                Xattrs = xattrs,
                Inode = st.Ino,
            };
            if (kind == NodeKind.Dir) Walk(root, childRel, tree, keepXattr);
        }
    }
}
