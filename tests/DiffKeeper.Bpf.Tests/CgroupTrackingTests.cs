using System.Diagnostics;
using DiffKeeper.Bpf.Tests.Infrastructure;
using static DiffKeeper.Bpf.Tests.Infrastructure.CaptureSession;

namespace DiffKeeper.Bpf.Tests;

/// <summary>
/// The cgroup filter (`diffkeeper record`): a process in the host's mount namespace is tracked by its cgroup v2 id.
/// What processes in that cgroup (and their children) change comes back under its slot; what the same program
/// changes from another cgroup does not; after UntrackCgroup nothing does.
/// </summary>
public class CgroupTrackingTests
{
    private const uint CgroupSlot = 77;

    [SkippableFact]
    public void ProcessesInATrackedCgroupAreCapturedAndOthersAreNot()
    {
        using var s = Start(track: false);
        var mount = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(" - "))
            .Where(p => p.Length == 2 && p[1].StartsWith("cgroup2 ", StringComparison.Ordinal))
            .Select(p => p[0].Split(' ')[4]).FirstOrDefault();
        Integration.Require(mount != null, "cgroup v2 mounted");
        var own = File.ReadLines("/proc/self/cgroup").First(l => l.StartsWith("0::", StringComparison.Ordinal))[3..].TrimEnd('/');
        var cg = Path.Join(mount, own, "dk-bpf-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(cg);
        try
        {
            ulong id = BpfEnv.Stat(cg).Ino;
            s.Capture.TrackCgroup(id, CgroupSlot);
            Assert.True(s.Capture.Attached);
            string inside = s.Scratch["inside"], child = s.Scratch["child"], outside = s.Scratch["outside"];
            // The shell enters the cgroup itself, then writes, and starts a child (dd) that inherits the cgroup.
            Sh($"echo $$ > {cg}/cgroup.procs && echo in > {inside} && dd if=/dev/zero of={child} bs=4096 count=1 2>/dev/null");
            Sh($"echo out > {outside}"); // the same program, not in the cgroup
            var drained = s.Drain();
            var e = InSlot(drained, inside);
            Assert.Equal("sh", e.Comm);
            Assert.Equal("dd", InSlot(drained, child).Comm);
            Assert.Null(Find(drained, outside));

            s.Capture.UntrackCgroup(id);
            Assert.False(s.Capture.Attached); // nothing tracked any more: detached
            File.Delete(inside);
            Sh($"echo $$ > {cg}/cgroup.procs && echo again > {inside}");
            Assert.Null(Find(s.Drain(), inside));
        }
        finally
        {
            for (int i = 0; i < 50 && Directory.Exists(cg); i++)
            {
                try { Directory.Delete(cg); } catch (IOException) { Thread.Sleep(20); }
            }
        }
    }

    private static DirtyInode InSlot(List<DirtyInode> drained, string path)
    {
        var e = Find(drained, path);
        Assert.True(e is not null, $"no dirty-set entry for {path}; drained: {Describe(drained)}");
        Assert.True((e.Value.Kinds & ChangeKinds.Data) != 0, $"{path}: kinds {e.Value.Kinds}");
        Assert.Equal(CgroupSlot, e.Value.Slot);
        return e.Value;
    }

    private static void Sh(string script)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", script]) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"sh -c '{script}' failed: {err}");
    }
}
