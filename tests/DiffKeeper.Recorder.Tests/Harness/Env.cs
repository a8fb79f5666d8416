using System.Diagnostics;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>What every daemon test needs, and running helper commands.</summary>
public static class Env
{
    /// <summary>What every daemon test needs: root, the binaries, unshare, overlayfs.</summary>
    public static DaemonBinaries RequireDaemon()
    {
        Integration.RequireRoot("needs root (overlay mounts, eBPF, the root-only socket)");
        Integration.Require(Integration.HasTool("unshare"), "needs unshare (util-linux)");
        var daemon = Binaries.Require(Binaries.Daemon);
        var cli = Binaries.Require(Binaries.Cli);
        return new DaemonBinaries(daemon, cli, Binaries.Find(Binaries.BpfObject).Path);
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
/// The binaries under test (<see cref="Binaries"/>: $DIFFKEEPER_BIN_DIR or artifacts/bin). Not published here: a
/// Native AOT publish per test run would cost minutes on 2 cores.
/// </summary>
public sealed record DaemonBinaries(string Daemon, string Cli, string? BpfObject);
