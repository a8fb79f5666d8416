using System.Diagnostics;
using DiffKeeper.Shim.Cgroups;
using Xunit;

namespace DiffKeeper.Shim.Tests.Options;

/// <summary>
/// Joining the options' ShimCgroup on real cgroup file systems. This host is hybrid (v1 controllers, cgroup2 on
/// /sys/fs/cgroup/unified), so the v2 path is exercised on that cgroup2 mount; v1 end to end (through containerd)
/// is in the integration suite.
/// </summary>
public class ShimCgroupTests
{
    private const string Unified = "/sys/fs/cgroup/unified";

    [SkippableFact]
    public void V2_moves_the_process_into_the_group()
    {
        Integration.RequireRoot("needs root: the shim binds its socket in /run/containerd/s");
        Skip.IfNot(ShimCgroup.IsUnified(Unified), $"no cgroup2 mounted at {Unified}");
        var name = "dk-unit-" + Guid.NewGuid().ToString("N")[..8];
        var dir = Path.Combine(Unified, name);
        Directory.CreateDirectory(dir);
        using var sleeper = Process.Start("sleep", "30");
        try
        {
            ShimCgroup.JoinV2(Unified, "/" + name, sleeper.Id);
            Assert.Contains(sleeper.Id.ToString(), File.ReadAllLines(Path.Combine(dir, "cgroup.procs")));
            Assert.Contains($"0::/{name}", File.ReadAllText($"/proc/{sleeper.Id}/cgroup"));
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit();
            for (int i = 0; i < 50 && Directory.Exists(dir); i++)
            {
                try { Directory.Delete(dir); } catch (IOException) { Thread.Sleep(20); }
            }
        }
    }

    [SkippableFact]
    public void V2_missing_group_and_relative_path_fail_with_upstream_texts()
    {
        Skip.IfNot(ShimCgroup.IsUnified(Unified), $"no cgroup2 mounted at {Unified}");
        var missing = Assert.Throws<IOException>(() => ShimCgroup.JoinV2(Unified, "/dk-no-such-group", Environment.ProcessId));
        Assert.StartsWith("failed to join cgroup /dk-no-such-group: ", missing.Message);
        var relative = Assert.Throws<IOException>(() => ShimCgroup.JoinV2(Unified, "dk", Environment.ProcessId));
        Assert.StartsWith("failed to load cgroup dk: invalid group path", relative.Message);
    }

    [Fact]
    public void V1_with_the_group_in_no_hierarchy_is_upstreams_cgroup_deleted()
    {
        var e = Assert.Throws<IOException>(() => ShimCgroup.JoinV1(ShimCgroup.Root, "/dk-no-such-group-" + Guid.NewGuid().ToString("N")[..6], Environment.ProcessId));
        Assert.Matches("^failed to load cgroup /dk-no-such-group-[0-9a-f]+: cgroups: cgroup deleted$", e.Message);
    }
}
