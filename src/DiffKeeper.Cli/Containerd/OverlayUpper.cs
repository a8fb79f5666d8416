using DiffKeeper.Cli.Containerd.Api;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// The upper directory of an active snapshot, when we can fill it ourselves instead of asking containerd to unpack
/// a tar layer into it: the snapshotter's mounts are one local overlay mount whose upperdir is an empty directory
/// on this machine, we are root (the entries get their owners, whiteouts and trusted.overlay.opaque as overlayfs
/// reads them), and the mount does not use "userxattr" (that would read user.overlay.* marks instead). Anything
/// else (another snapshotter, a remote or rootless containerd) is null: the caller then takes the tar path.
/// </summary>
public static class OverlayUpper
{
    public static string? Of(IReadOnlyList<Mount> mounts, out string why)
    {
        if (Libc.geteuid() != 0) { why = "not root"; return null; }
        if (mounts.Count != 1 || mounts[0].Type != "overlay") { why = $"mounts are not one overlay mount ({string.Join(",", mounts.Select(m => m.Type))})"; return null; }
        string? upper = null;
        foreach (var o in mounts[0].Options)
        {
            if (o == "userxattr") { why = "the overlay mount uses userxattr"; return null; }
            if (o.StartsWith("upperdir=", StringComparison.Ordinal)) upper = o["upperdir=".Length..];
        }
        if (upper is null || !Path.IsPathRooted(upper)) { why = "the overlay mount has no absolute upperdir"; return null; }
        // Not visible here (another mount namespace or machine), or not the fresh empty directory Prepare makes.
        if (!Directory.Exists(upper)) { why = $"upperdir {upper} is not a directory here"; return null; }
        if (Directory.EnumerateFileSystemEntries(upper).Any()) { why = $"upperdir {upper} is not empty"; return null; }
        why = "";
        return upper;
    }

    /// <summary>
    /// The writable snapshot's overlay mount with <paramref name="stateUpper"/> as its topmost lower layer: the state
    /// read-only under the fresh writable layer, over the image's layers, which is the mount containerd would give
    /// for a writable snapshot on the committed state snapshot (whose directory is this same upper directory) —
    /// without the Commit and second Prepare. The caller must not write into <paramref name="stateUpper"/> any more.
    /// </summary>
    public static Mount Under(string stateUpper, Mount writable)
    {
        var m = new Mount { Type = writable.Type, Source = writable.Source, Target = writable.Target };
        bool placed = false;
        foreach (var o in writable.Options)
        {
            if (o.StartsWith("lowerdir=", StringComparison.Ordinal)) { m.Options.Add($"lowerdir={stateUpper}:{o["lowerdir=".Length..]}"); placed = true; }
            else m.Options.Add(o);
        }
        if (!placed) throw new IOException($"the writable snapshot's overlay mount has no lowerdir ({string.Join(",", writable.Options)})");
        return m;
    }
}
