using DiffKeeper.Common.Native;

namespace DiffKeeper.Node.Tests;

/// <summary>
/// DIFFKEEPER_LIBBPF's choices, loaded for real in this process (Libbpf.Load, as the daemon and doctor do). The
/// bundled copy's fallback, with the system's hidden, is exercised by the rpm test (scripts/rpm-install.sh).
/// </summary>
public class LibbpfTests
{
    private static bool SystemHasLibbpf1 => File.Exists("/usr/lib/x86_64-linux-gnu/libbpf.so.1") || File.Exists("/lib64/libbpf.so.1");

    [SkippableFact]
    public void AutoAndSystem_LoadTheSystemsLibbpf()
    {
        Integration.Require(SystemHasLibbpf1, "needs libbpf1");
        foreach (var choice in new[] { null, "", "auto", "system" })
        {
            var r = Libbpf.Load(choice);
            Assert.NotEqual(0, r.Handle);
            Assert.Equal("system libbpf.so.1", r.Source);
        }
    }

    [SkippableFact]
    public void APath_LoadsThatFile()
    {
        Integration.Require(SystemHasLibbpf1, "needs libbpf1");
        var path = File.Exists("/usr/lib/x86_64-linux-gnu/libbpf.so.1") ? "/usr/lib/x86_64-linux-gnu/libbpf.so.1" : "/lib64/libbpf.so.1";
        var r = Libbpf.Load(path);
        Assert.NotEqual(0, r.Handle);
        Assert.Contains(path, r.Source);
    }

    [Fact]
    public void Missing_Relative_AndAbsentBundledCopy_SayWhy()
    {
        using var t = new TempDir("dk-node-");
        var missing = Libbpf.Load(t["libbpf.so.1"]);
        Assert.Equal(0, missing.Handle);
        Assert.Contains(t["libbpf.so.1"], missing.Source);

        var relative = Libbpf.Load("libbpf.so.1");
        Assert.Equal(0, relative.Handle);
        Assert.Contains("expected auto, system, bundled or an absolute path", relative.Source);

        // The test host has no libbpf/ beside it: "bundled" reports the path it tried.
        Assert.False(File.Exists(Libbpf.BundledPath));
        var bundled = Libbpf.Load("bundled");
        Assert.Equal(0, bundled.Handle);
        Assert.Contains(Libbpf.BundledPath, bundled.Source);

        // An ELF that is not a library (an empty file) is an error too, not a crash.
        File.WriteAllBytes(t["empty.so"], []);
        Assert.Equal(0, Libbpf.Load(t["empty.so"]).Handle);
    }
}
