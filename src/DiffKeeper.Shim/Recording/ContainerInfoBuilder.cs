using DiffKeeper.Recorder.Api;

namespace DiffKeeper.Shim.Recording;

/// <summary>The recorder API's ContainerInfo for a container the shim just created (init created, not started).</summary>
internal static class ContainerInfoBuilder
{
    public static ContainerInfo Build(ContainerRecordInfo c, string containerdAddress)
    {
        var layout = c.Layout;
        var info = new ContainerInfo
        {
            Namespace = c.Namespace,
            Id = c.Id,
            Bundle = c.Bundle,
            Rootfs = c.RootfsPath,
            UpperDir = layout?.UpperDir ?? c.UpperDir ?? "",
            WorkDir = layout?.WorkDir ?? "",
            RootfsType = layout?.Type ?? (c.UpperDir != null ? "overlay" : ""),
            InitPid = c.Pid,
            MountNamespace = MountNamespace(c.Pid),
            CgroupPath = CgroupPath(c.Pid),
            ShimPid = Environment.ProcessId,
            ContainerdAddress = containerdAddress,
        };
        if (layout != null) info.LowerDirs.AddRange(layout.LowerDirs);
        if (c.Spec is { } spec)
        {
            info.Annotations.Add(spec.Annotations);
            var process = new OciProcess { Cwd = spec.Cwd, Uid = spec.Uid, Gid = spec.Gid, Terminal = spec.Terminal };
            process.Args.AddRange(spec.Args);
            process.EnvNames.AddRange(spec.EnvNames);
            info.Process = process;
        }
        return info;
    }

    /// <summary>The inode of the init's mount namespace: <c>readlink /proc/&lt;pid&gt;/ns/mnt</c> is "mnt:[N]"; 0 if unreadable.</summary>
    public static ulong MountNamespace(int pid)
    {
        if (pid <= 0) return 0;
        try
        {
            var target = new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget;
            return ParseNamespaceLink(target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    internal static ulong ParseNamespaceLink(string? target)
    {
        if (target == null) return 0;
        int open = target.IndexOf('['), close = target.IndexOf(']');
        return open >= 0 && close > open && ulong.TryParse(target.AsSpan(open + 1, close - open - 1), out var n) ? n : 0;
    }

    /// <summary>The init's cgroup from <c>/proc/&lt;pid&gt;/cgroup</c>: the cgroup2 line ("0::/path") when present, else
    /// the first v1 line's path.</summary>
    public static string CgroupPath(int pid)
    {
        if (pid <= 0) return "";
        try
        {
            return ParseCgroupFile(File.ReadAllLines($"/proc/{pid}/cgroup"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    internal static string ParseCgroupFile(IEnumerable<string> lines)
    {
        string? first = null;
        foreach (var line in lines)
        {
            var parts = line.Split(':', 3);
            if (parts.Length < 3) continue;
            if (parts[0] == "0" && parts[1].Length == 0) return parts[2];
            first ??= parts[2];
        }
        return first ?? "";
    }
}
