using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Cgroups;

/// <summary>
/// Moves a process into the runtime options' <c>ShimCgroup</c>, as the runc shim does at <c>start</c> with
/// containerd's cgroups library:
/// <list type="bullet">
/// <item>unified (cgroup2 on /sys/fs/cgroup): <c>/sys/fs/cgroup/&lt;path&gt;/cgroup.procs</c>;</item>
/// <item>legacy and hybrid (v1 controllers, maybe cgroup2 on /sys/fs/cgroup/unified): every mounted v1 hierarchy
/// of the library's default list in which <c>&lt;path&gt;</c> exists, and none of them existing is an error. The
/// hybrid cgroup2 tree is left alone, as upstream leaves it.</item>
/// </list>
/// Error texts are upstream's, so node logs read the same whichever shim failed.
/// </summary>
internal static class ShimCgroup
{
    public const string Root = "/sys/fs/cgroup";
    private const long Cgroup2SuperMagic = 0x63677270;

    /// <summary>The v1 hierarchies containerd's cgroups library (<c>cgroups.V1</c>) uses, by mount name.</summary>
    private static readonly string[] V1Hierarchies =
        ["systemd", "freezer", "pids", "net_cls", "net_prio", "perf_event", "cpuset", "cpu", "cpuacct", "memory", "blkio", "rdma", "devices", "hugetlb"];

    public static bool IsUnified(string root = Root) => LibC.FileSystemType(root) == Cgroup2SuperMagic;

    /// <summary>Moves <paramref name="pid"/> into <paramref name="path"/>; throws <see cref="IOException"/> with upstream's text.</summary>
    public static void Join(string path, int pid)
    {
        if (IsUnified()) JoinV2(Root, path, pid);
        else JoinV1(Root, path, pid);
    }

    public static void JoinV2(string mountpoint, string path, int pid)
    {
        if (!path.StartsWith('/'))
            throw new IOException($"failed to load cgroup {path}: invalid group path leaf {path}, must be an absolute path starting with \"/\"");
        var procs = Path.Combine(mountpoint, path.TrimStart('/'), "cgroup.procs");
        try { File.WriteAllText(procs, pid.ToString()); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"failed to join cgroup {path}: {Describe(e, procs)}");
        }
    }

    public static void JoinV1(string root, string path, int pid)
    {
        var targets = new List<string>();
        foreach (var hierarchy in V1Hierarchies)
        {
            var mount = Path.Combine(root, hierarchy);
            if (!Directory.Exists(mount)) continue;
            var dir = Path.Combine(mount, path.TrimStart('/'));
            if (Directory.Exists(dir)) targets.Add(dir);
        }
        if (targets.Count == 0) throw new IOException($"failed to load cgroup {path}: cgroups: cgroup deleted");
        foreach (var dir in targets)
        {
            var procs = Path.Combine(dir, "cgroup.procs");
            try { File.WriteAllText(procs, pid.ToString()); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"failed to join cgroup {path}: {Describe(e, procs)}");
            }
        }
    }

    private static string Describe(Exception e, string file) =>
        e is ErrnoException or UnauthorizedAccessException || e.Message.Contains(file, StringComparison.Ordinal)
            ? e.Message
            : $"write {file}: {e.Message}";
}
