using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>
/// Prerequisites and the object under test. Missing prerequisites skip a test, unless
/// DIFFKEEPER_REQUIRE_INTEGRATION=1 (CI), where a skip would hide a broken setup: then they fail it.
/// </summary>
public static partial class BpfEnv
{
    public static bool Required => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void Require(bool present, string what)
    {
        if (present) return;
        if (Required) Assert.Fail($"integration prerequisite missing: {what} (DIFFKEEPER_REQUIRE_INTEGRATION=1)");
        Skip.If(true, $"needs {what}");
    }

    /// <summary>Skips (or fails) unless this process can load eBPF and run the helpers; returns the object's path.</summary>
    public static string RequireAll()
    {
        Require(geteuid() == 0, "root (loading eBPF)");
        Require(File.Exists("/sys/kernel/btf/vmlinux"), "a kernel with BTF (/sys/kernel/btf/vmlinux)");
        Require(FindOnPath("unshare") is not null, "unshare (util-linux)");
        Require(FindOnPath("python3") is not null, "python3");
        string? obj = ObjectPath();
        Require(obj is not null, "the eBPF object diffkeeper.bpf.o (run `make build`)");
        return obj!;
    }

    /// <summary>$DIFFKEEPER_BIN_DIR/diffkeeper.bpf.o (make test), else the repository's artifacts/bin.</summary>
    public static string? ObjectPath()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR") is { Length: > 0 } bin) candidates.Add(Path.Combine(bin, "diffkeeper.bpf.o"));
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffKeeper.sln")))
            {
                candidates.Add(Path.Combine(dir.FullName, "artifacts", "bin", "diffkeeper.bpf.o"));
                break;
            }
        return candidates.FirstOrDefault(File.Exists);
    }

    public static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);

    /// <summary>(st_dev, st_ino) of a path, not following a final symlink.</summary>
    public static (ulong Dev, ulong Ino) Stat(string path)
    {
        Span<byte> st = stackalloc byte[256]; // struct stat is 144 bytes on x86_64: st_dev at 0, st_ino at 8
        if (lstat(path, ref MemoryMarshal.GetReference(st)) != 0)
            throw new IOException($"lstat {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        return (MemoryMarshal.Read<ulong>(st), MemoryMarshal.Read<ulong>(st[8..]));
    }

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

    [LibraryImport("libc")] private static partial uint geteuid();
    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int lstat(string path, ref byte buf);
}
