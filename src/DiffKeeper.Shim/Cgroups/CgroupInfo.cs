namespace DiffKeeper.Shim.Cgroups;

/// <summary>
/// Where a container's cgroup lives, read from <c>/proc/&lt;pid&gt;/cgroup</c> after create. On a cgroup v1 (or
/// hybrid) host each controller has its own directory; on a unified host there is one directory.
/// </summary>
internal sealed class CgroupInfo
{
    private const string Root = "/sys/fs/cgroup";

    private CgroupInfo(bool unified, string? unifiedPath, Dictionary<string, string> controllers)
    {
        IsUnified = unified;
        UnifiedPath = unifiedPath;
        Controllers = controllers;
    }

    public bool IsUnified { get; }
    /// <summary>The v2 directory when <see cref="IsUnified"/>.</summary>
    public string? UnifiedPath { get; }
    /// <summary>v1: controller name → directory.</summary>
    public IReadOnlyDictionary<string, string> Controllers { get; }

    /// <summary>Whether the host runs the unified hierarchy at /sys/fs/cgroup (a hybrid host counts as v1).</summary>
    public static bool HostIsUnified => File.Exists(Path.Combine(Root, "cgroup.controllers"));

    public string? Controller(string name) => Controllers.TryGetValue(name, out var dir) ? dir : null;

    public bool Exists => IsUnified ? Directory.Exists(UnifiedPath) : Controllers.Values.Any(Directory.Exists);

    public static CgroupInfo? ForPid(int pid)
    {
        string[] lines;
        try { lines = File.ReadAllLines($"/proc/{pid}/cgroup"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }

        bool unified = HostIsUnified;
        var controllers = new Dictionary<string, string>();
        string? unifiedPath = null;
        foreach (var line in lines)
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            var (names, path) = (parts[1], parts[2].TrimStart('/'));
            if (names.Length == 0)
            {
                if (unified) unifiedPath = Path.Combine(Root, path);
                continue;
            }
            if (unified) continue;
            var mount = Path.Combine(Root, names);
            foreach (var name in names.Split(','))
            {
                var mountDir = Directory.Exists(mount) ? mount : Path.Combine(Root, name);
                controllers[name] = Path.Combine(mountDir, path);
            }
        }
        if (unified && unifiedPath == null) return null;
        return new CgroupInfo(unified, unifiedPath, controllers);
    }
}
