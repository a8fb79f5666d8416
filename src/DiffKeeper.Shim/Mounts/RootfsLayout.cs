using DiffKeeper.Shim.Protos.Types;

namespace DiffKeeper.Shim.Mounts;

/// <summary>
/// What the recorder needs to know about a container's rootfs, from the Create mounts: its type and, for an
/// overlay, the upper, lower (top first, as in <c>lowerdir=</c>) and work directories. No mounts
/// (<c>ctr run --rootfs</c>) gives type "" and no upper dir; a bind/rbind snapshot (no parent layers) gives "bind".
/// </summary>
public sealed record RootfsLayout(string Type, string? UpperDir, IReadOnlyList<string> LowerDirs, string? WorkDir)
{
    public static readonly RootfsLayout None = new("", null, Array.Empty<string>(), null);

    public bool IsOverlay => Type == "overlay" && UpperDir != null;

    public static RootfsLayout From(IReadOnlyList<Mount> mounts)
    {
        if (mounts.Count == 0) return None;
        foreach (var m in mounts)
        {
            if (m.Type != "overlay") continue;
            string? upper = null, work = null;
            var lowers = new List<string>();
            foreach (var o in m.Options)
            {
                if (o.StartsWith("upperdir=", StringComparison.Ordinal)) upper = o["upperdir=".Length..];
                else if (o.StartsWith("workdir=", StringComparison.Ordinal)) work = o["workdir=".Length..];
                else if (o.StartsWith("lowerdir=", StringComparison.Ordinal)) lowers.AddRange(o["lowerdir=".Length..].Split(':'));
            }
            return new RootfsLayout("overlay", upper, lowers, work);
        }
        // "rbind" is containerd's spelling of a bind snapshot in the options; the type says "bind".
        var first = mounts[0];
        return new RootfsLayout(first.Type, null, Array.Empty<string>(), null);
    }
}
