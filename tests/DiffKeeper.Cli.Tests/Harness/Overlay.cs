using System.Diagnostics;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>A kernel overlay mount, unmounted on dispose (also when the test failed).</summary>
public sealed class Overlay : IDisposable
{
    public string MountPoint { get; }
    private bool _mounted;

    /// <summary>A read-only stack of layers: the reference for what "merged" means.</summary>
    /// <param name="layersTopFirst">Layer directories, the newest first (as overlayfs' lowerdir wants them).</param>
    public Overlay(IEnumerable<string> layersTopFirst, string mountPoint)
    {
        var layers = layersTopFirst.ToList();
        if (layers.Count == 1)
        {
            // One lower layer alone is not enough for overlayfs: add an empty bottom layer.
            var empty = mountPoint + ".empty";
            Directory.CreateDirectory(empty);
            layers.Add(empty);
        }
        MountPoint = mountPoint;
        Mount("lowerdir=" + string.Join(':', layers));
    }

    private Overlay(string mountPoint) => MountPoint = mountPoint;

    /// <summary>A writable overlay, as a container's rootfs: <paramref name="extraOptions"/> e.g. "redirect_dir=on".</summary>
    public static Overlay Writable(string lower, string upper, string work, string mountPoint, string? extraOptions = null)
    {
        foreach (var d in new[] { upper, work }) Directory.CreateDirectory(d);
        var o = new Overlay(mountPoint);
        o.Mount($"lowerdir={lower},upperdir={upper},workdir={work}" + (extraOptions is null ? "" : "," + extraOptions));
        return o;
    }

    private void Mount(string options)
    {
        Directory.CreateDirectory(MountPoint);
        Run("mount", "-t", "overlay", "overlay", "-o", options, MountPoint);
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
