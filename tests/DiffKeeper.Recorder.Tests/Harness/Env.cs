using System.Diagnostics;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>Prerequisites: skip when missing, unless DIFFKEEPER_REQUIRE_INTEGRATION=1 asks to fail instead.</summary>
public static class Env
{
    private static bool RequireAll => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void Require(bool condition, string what)
    {
        if (condition) return;
        if (RequireAll) throw new Xunit.Sdk.XunitException($"prerequisite missing (DIFFKEEPER_REQUIRE_INTEGRATION=1): {what}");
        Skip.If(true, what);
    }

    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    [System.Runtime.InteropServices.DllImport("libc")] private static extern uint geteuid();

    public static bool HasTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, name)));

    /// <summary>What every daemon test needs: root, the binaries, unshare, overlayfs.</summary>
    public static Binaries RequireDaemon()
    {
        Require(IsRoot, "needs root (overlay mounts, eBPF, the root-only socket)");
        Require(HasTool("unshare"), "needs unshare (util-linux)");
        var bins = Binaries.Find();
        Require(bins.Problem == null, bins.Problem ?? "");
        return bins;
    }

    /// <summary>Runs a command to completion; throws with its output when it fails.</summary>
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new IOException($"{file} {string.Join(' ', args)} failed (exit {p.ExitCode}): {stderr.Result}{stdout.Result}");
        return stdout.Result;
    }
}

/// <summary>
/// The binaries under test: $DIFFKEEPER_BIN_DIR (what `make test` passes), else the repository's artifacts/bin
/// (left by `make build`). Not published here: a Native AOT publish per test run would cost minutes on 2 cores.
/// </summary>
public sealed class Binaries
{
    public string Daemon { get; private init; } = "";
    public string Cli { get; private init; } = "";
    public string? BpfObject { get; private init; }
    public string? Problem { get; private init; }

    public static Binaries Find()
    {
        var dir = Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR");
        if (string.IsNullOrEmpty(dir))
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "DiffKeeper.sln"))) { dir = Path.Combine(d.FullName, "artifacts", "bin"); break; }
        }
        if (string.IsNullOrEmpty(dir)) return new Binaries { Problem = "cannot find artifacts/bin (set DIFFKEEPER_BIN_DIR)" };
        var daemon = Path.Combine(dir, "diffkeeperd");
        var cli = Path.Combine(dir, "diffkeeper");
        if (!File.Exists(daemon) || !File.Exists(cli))
            return new Binaries { Problem = $"{daemon} or {cli} is missing: run `make build` first" };
        var bpf = Path.Combine(dir, "diffkeeper.bpf.o");
        return new Binaries { Daemon = daemon, Cli = cli, BpfObject = File.Exists(bpf) ? bpf : null };
    }
}
