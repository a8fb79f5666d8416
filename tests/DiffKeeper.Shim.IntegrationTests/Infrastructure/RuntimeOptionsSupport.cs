using System.Globalization;
using System.Text;
using DiffKeeper.Shim.IntegrationTests.Wire;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// The runc options (containerd.runc.v1.Options) a test hands a shim, and their encodings: the protobuf message
/// (field numbers of containerd's runtime/v2/runc/options/oci.proto) and the TOML a node writes for them.
/// </summary>
public sealed record TestRuncOptions
{
    public bool NoPivotRoot { get; init; }
    public bool NoNewKeyring { get; init; }
    public string ShimCgroup { get; init; } = "";
    public uint IoUid { get; init; }
    public uint IoGid { get; init; }
    public string BinaryName { get; init; } = "";
    public string Root { get; init; } = "";
    public string CriuPath { get; init; } = "";
    public bool SystemdCgroup { get; init; }

    public byte[] ToProto()
    {
        var w = new ProtoWriter();
        if (NoPivotRoot) w.Varint(1, 1);
        if (NoNewKeyring) w.Varint(2, 1);
        if (ShimCgroup.Length > 0) w.String(3, ShimCgroup);
        if (IoUid != 0) w.Varint(4, IoUid);
        if (IoGid != 0) w.Varint(5, IoGid);
        if (BinaryName.Length > 0) w.String(6, BinaryName);
        if (Root.Length > 0) w.String(7, Root);
        if (CriuPath.Length > 0) w.String(8, CriuPath);
        if (SystemdCgroup) w.Varint(9, 1);
        return w.ToArray();
    }

    /// <summary>As a node's `[...runtimes.X.options]` table would say it (the Go field names).</summary>
    public string ToToml()
    {
        var s = new StringBuilder("# runc options for io.containerd.diffkeeper.v1 (written by the integration tests)\n");
        if (NoPivotRoot) s.Append("NoPivotRoot = true\n");
        if (NoNewKeyring) s.Append("NoNewKeyring = true\n");
        if (ShimCgroup.Length > 0) s.Append($"ShimCgroup = \"{ShimCgroup}\"\n");
        if (IoUid != 0) s.Append(CultureInfo.InvariantCulture, $"IoUid = {IoUid}\n");
        if (IoGid != 0) s.Append(CultureInfo.InvariantCulture, $"IoGid = {IoGid}\n");
        if (BinaryName.Length > 0) s.Append($"BinaryName = \"{BinaryName}\"\n");
        if (Root.Length > 0) s.Append($"Root = \"{Root}\"\n");
        if (CriuPath.Length > 0) s.Append($"CriuPath = \"{CriuPath}\"\n");
        if (SystemdCgroup) s.Append("SystemdCgroup = true\n");
        return s.ToString();
    }
}

/// <summary>
/// How the options reach the shim. The stock shim reads only runc Options; ours also reads runtimeoptions.v1
/// (what `ctr --runtime-config-path` and CRI send to a non-runc runtime) carrying the same names as TOML.
/// </summary>
public static class OptionForms
{
    /// <summary>containerd.runc.v1.Options as task options (containerd's Go client, CRI for runc runtimes).</summary>
    public const string RuncOptions = "runc";
    /// <summary>runtimeoptions.v1.Options{ConfigPath} as the container's runtime options (`ctr --runtime-config-path`).</summary>
    public const string ConfigPath = "path";
    /// <summary>runtimeoptions.v1.Options{ConfigBody} as task options (containerd 1.7+ CRI with an inline options table).</summary>
    public const string ConfigBody = "body";

    /// <summary>Theory rows: every runtime with runc Options; ours with the runtimeoptions forms as well.</summary>
    public static TheoryData<string, string> All
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var runtime in ShimRuntimes.Selected)
            {
                data.Add(runtime, RuncOptions);
                if (runtime == ShimRuntimes.DiffKeeper)
                {
                    data.Add(runtime, ConfigPath);
                    data.Add(runtime, ConfigBody);
                }
            }
            return data;
        }
    }

    public static byte[] RuntimeOptionsWithBody(string toml) => new ProtoWriter().Bytes(3, Encoding.UTF8.GetBytes(toml)).ToArray();
}

/// <summary>
/// A runtime binary standing in for runc (the options' BinaryName): a script that appends its argv, one call per
/// line with tab-separated arguments, to a log, then execs the real runc.
/// </summary>
public sealed class RuncWrapper
{
    public RuncWrapper(string dir, string name)
    {
        Path = System.IO.Path.Combine(dir, name);
        LogPath = Path + ".argv";
        var runc = Integration.FindOnPath("runc") ?? "runc";
        File.WriteAllText(Path, $$"""
            #!/bin/sh
            # Test stand-in for runc (DiffKeeper.Shim.IntegrationTests): log argv, then run the real runc.
            { for a in "$@"; do printf '%s\t' "$a"; done; echo; } >>'{{LogPath}}'
            exec '{{runc}}' "$@"
            """.Replace("\r", "") + "\n");
        File.SetUnixFileMode(Path, (UnixFileMode)0b111_101_101);
    }

    public string Path { get; }
    public string LogPath { get; }

    /// <summary>Each logged call's argv (without the program name).</summary>
    public List<string[]> Calls() => File.Exists(LogPath)
        ? File.ReadAllLines(LogPath).Where(l => l.Length > 0).Select(l => l.TrimEnd('\t').Split('\t')).ToList()
        : new List<string[]>();
}

/// <summary>
/// A cgroup created for a test the way containerd's TestShimInCgroup does: the same path in every v1 hierarchy
/// this test touches (or in the unified tree on a cgroup v2 host). On a hybrid host a directory of the same name
/// is also made in the cgroup2 tree at /sys/fs/cgroup/unified, where the stock shim does not put itself.
/// Removed on dispose once empty.
/// </summary>
public sealed class TestCgroup : IDisposable
{
    private const string Root = "/sys/fs/cgroup";
    // Hierarchies that need no seeding (cpuset would need cpus/mems copied) and do not take the test host's memory
    // accounting away from the shim.
    private static readonly string[] V1 = ["systemd", "pids", "devices", "freezer", "cpu", "cpuacct", "blkio"];

    public TestCgroup(string name)
    {
        CgroupPath = "/" + name;
        if (IsUnified(Root))
        {
            MemberDirs.Add(System.IO.Path.Combine(Root, name));
        }
        else
        {
            foreach (var h in V1)
                if (Directory.Exists(System.IO.Path.Combine(Root, h))) MemberDirs.Add(System.IO.Path.Combine(Root, h, name));
            var unified = System.IO.Path.Combine(Root, "unified");
            if (IsUnified(unified)) NonMemberDirs.Add(System.IO.Path.Combine(unified, name));
        }
        foreach (var dir in MemberDirs.Concat(NonMemberDirs)) Directory.CreateDirectory(dir);
    }

    /// <summary>The ShimCgroup value: the path below each hierarchy's root.</summary>
    public string CgroupPath { get; }

    /// <summary>Directories that must hold the shim.</summary>
    public List<string> MemberDirs { get; } = new();

    /// <summary>Directories that must not (the hybrid cgroup2 tree, which upstream leaves alone).</summary>
    public List<string> NonMemberDirs { get; } = new();

    public static List<int> Procs(string dir) =>
        File.ReadAllLines(System.IO.Path.Combine(dir, "cgroup.procs")).Where(l => l.Length > 0).Select(int.Parse).ToList();

    private static bool IsUnified(string path)
    {
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            var parts = line.Split(' ');
            int dash = Array.IndexOf(parts, "-");
            if (dash > 0 && parts[4] == path && parts[dash + 1] == "cgroup2") return true;
        }
        return false;
    }

    public void Dispose()
    {
        foreach (var dir in MemberDirs.Concat(NonMemberDirs))
        {
            for (int i = 0; i < 100 && Directory.Exists(dir); i++)
            {
                try { Directory.Delete(dir); }
                catch (IOException) { Thread.Sleep(50); } // a process still leaving it
            }
        }
    }
}
