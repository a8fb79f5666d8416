using System.Diagnostics;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>A read-only kernel overlay mount of stacked layers: the reference for what "merged" means.</summary>
public sealed class Overlay : IDisposable
{
    public string MountPoint { get; }
    private bool _mounted;

    /// <param name="layersTopFirst">Layer directories, the newest first (as overlayfs' lowerdir wants them).</param>
    public Overlay(IEnumerable<string> layersTopFirst, string mountPoint)
    {
        MountPoint = mountPoint;
        Directory.CreateDirectory(mountPoint);
        var layers = layersTopFirst.ToList();
        // One lower layer alone is not enough for overlayfs: add an empty bottom layer.
        var empty = mountPoint + ".empty";
        Directory.CreateDirectory(empty);
        layers.Add(empty);
        Run("mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + string.Join(':', layers), mountPoint);
        _mounted = true;
    }

    public static string? Run(params string[] args)
    {
        var psi = new ProcessStartInfo(args[0], args[1..]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new IOException($"{string.Join(' ', args)} failed (exit {p.ExitCode}): {err}");
        return null;
    }

    public void Dispose()
    {
        if (_mounted) { try { Run("umount", MountPoint); } catch (IOException) { Run("umount", "-l", MountPoint); } _mounted = false; }
    }
}
