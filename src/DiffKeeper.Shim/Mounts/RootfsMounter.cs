using DiffKeeper.Common.Mounts;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Protos.Types;

namespace DiffKeeper.Shim.Mounts;

/// <summary>
/// Mounts the rootfs entries containerd sends (in order) onto <c>&lt;bundle&gt;/rootfs</c> with mount(2), and
/// unmounts them again, the way containerd's mount package does.
/// </summary>
internal static class RootfsMounter
{
    // mount(2) copies at most one page of data; keep a margin like containerd does.
    private static readonly int MaxDataLength = Environment.SystemPageSize - 512;
    // chdir is process-wide: the long-overlay trick must not interleave with another one.
    private static readonly object ChdirGate = new();

    public static void MountAll(IReadOnlyList<Mount> mounts, string target)
    {
        int mounted = 0;
        try
        {
            foreach (var m in mounts)
            {
                MountOne(m, target);
                mounted++;
            }
        }
        catch
        {
            if (mounted > 0) UnmountAll(target);
            throw;
        }
    }

    private static void MountOne(Mount m, string target)
    {
        var options = MountOptions.Parse(m.Options);
        ulong flags = options.Flags;
        string data = options.Data;
        string source = m.Source;
        string? chdir = null;
        if (m.Type == "overlay" && data.Length > MaxDataLength)
            (chdir, data) = CompactLowerdirs(data);

        bool isRemount = (flags & MountOptions.MS_REMOUNT) != 0;
        if (!isRemount || data.Length > 0)
        {
            if (chdir != null)
            {
                lock (ChdirGate)
                {
                    var previous = Environment.CurrentDirectory;
                    LibC.Check(LibC.chdir(chdir), $"chdir {chdir}");
                    try { Check(LibC.mount(source, target, m.Type, flags, data), m, target); }
                    finally { LibC.chdir(previous); }
                }
            }
            else
            {
                Check(LibC.mount(source, target, m.Type, flags, data.Length > 0 ? data : null), m, target);
            }
        }
        if (options.Propagation != 0)
            Check(LibC.mount("", target, "", options.Propagation, null), m, target);
        const ulong bindReadOnly = MountOptions.MS_BIND | MountOptions.MS_RDONLY;
        if ((flags & bindReadOnly) == bindReadOnly)
            Check(LibC.mount("", target, "", flags | MountOptions.MS_REMOUNT, null), m, target);
    }

    private static void Check(int rc, Mount m, string target)
    {
        if (rc < 0) throw new ErrnoException(LibC.LastErrno, $"mount {m.Type} {m.Source} on {target}");
    }

    /// <summary>
    /// Rewrites <c>lowerdir=</c> relative to the lowerdirs' common parent directory so the data fits in a page;
    /// the mount is then done from inside that directory.
    /// </summary>
    internal static (string? Chdir, string Data) CompactLowerdirs(string data)
    {
        var parts = data.Split(',');
        int index = Array.FindIndex(parts, p => p.StartsWith("lowerdir=", StringComparison.Ordinal));
        if (index < 0) return (null, data);
        var lowers = parts[index]["lowerdir=".Length..].Split(':');
        if (lowers.Length < 2) return (null, data);
        string prefix = CommonDirectory(lowers);
        if (prefix.Length <= 1) return (null, data);
        parts[index] = "lowerdir=" + string.Join(':', lowers.Select(l => Path.GetRelativePath(prefix, l)));
        return (prefix, string.Join(',', parts));
    }

    private static string CommonDirectory(string[] paths)
    {
        string common = paths[0];
        foreach (var p in paths)
        {
            int len = 0, max = Math.Min(common.Length, p.Length);
            while (len < max && common[len] == p[len]) len++;
            common = common[..len];
        }
        int slash = common.LastIndexOf('/');
        return slash <= 0 ? "/" : common[..slash];
    }

    /// <summary>Whether <paramref name="path"/> is a mount point (per /proc/self/mountinfo).</summary>
    public static bool IsMountPoint(string path) => MountTable.Read().Any(m => m.MountPoint == path);

    /// <summary>
    /// Unmounts everything stacked on <paramref name="target"/>; false if something stayed mounted.
    /// Right after a container's last process exits the kernel is still tearing down its mount namespace, which
    /// holds the rootfs for a few milliseconds (EBUSY): poll briefly rather than sleeping in big steps, since the
    /// Delete reply (and so `ctr run --rm`) waits for this. After 2.5 s, detach.
    /// </summary>
    public static bool UnmountAll(string target)
    {
        long deadline = Environment.TickCount64 + 2500;
        for (int unmounted = 0; unmounted < 50;)
        {
            if (LibC.umount2(target, 0) == 0) { unmounted++; continue; }
            int errno = LibC.LastErrno;
            if (errno == LibC.EINVAL || errno == LibC.ENOENT) return true; // not (or no longer) a mount point
            if (errno == LibC.EBUSY && Environment.TickCount64 < deadline) { Thread.Sleep(2); continue; }
            ShimLog.Warn($"unmount {target}: errno {errno}, detaching");
            if (LibC.umount2(target, LibC.MNT_DETACH) != 0) return false;
            unmounted++;
        }
        return false;
    }
}
