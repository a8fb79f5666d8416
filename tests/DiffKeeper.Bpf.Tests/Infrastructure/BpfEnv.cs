using System.Diagnostics;

namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>Prerequisites of loading eBPF (skip, or fail under DIFFKEEPER_REQUIRE_INTEGRATION=1) and helper commands.</summary>
public static class BpfEnv
{
    /// <summary>Skips (or fails) unless this process can load eBPF and run the helpers; returns the object's path.</summary>
    public static string RequireAll()
    {
        Integration.RequireRoot("root (loading eBPF)");
        Integration.Require(File.Exists("/sys/kernel/btf/vmlinux"), "a kernel with BTF (/sys/kernel/btf/vmlinux)");
        Integration.Require(Integration.HasTool("unshare"), "unshare (util-linux)");
        Integration.Require(Integration.HasTool("python3"), "python3");
        return Binaries.Require(Binaries.BpfObject);
    }

    /// <summary>(st_dev, st_ino) of a path, not following a final symlink.</summary>
    public static (ulong Dev, ulong Ino) Stat(string path) => Libc.DeviceAndInode(path);

    /// <summary>Runs a command to completion (a helper, not the subject): fails the test when it fails.</summary>
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd(), error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {error}");
        return output;
    }
}
