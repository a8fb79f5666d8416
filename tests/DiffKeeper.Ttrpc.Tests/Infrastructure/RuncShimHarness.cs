using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>
/// Starts containerd's stock runc shim (Go ttrpc server, and Go ttrpc client for events) the way containerd
/// does: an OCI bundle with a busybox rootfs as working directory, a "log" FIFO, TTRPC_ADDRESS pointing at an
/// events server of ours. Dispose tears down container, shim (by the pid it reports) and files, whatever happened.
/// </summary>
public sealed class RuncShimHarness : IDisposable
{
    private readonly string _directory;
    private readonly List<Process> _helpers = [];
    private int _shimPid;

    private RuncShimHarness(string directory, string id)
    {
        _directory = directory;
        Id = id;
        Namespace = "dk-ttrpc-" + id[^8..];
        Bundle = Path.Combine(directory, id);
        EventsSocket = Path.Combine(directory, "events.sock");
    }

    public string Id { get; }
    public string Namespace { get; }
    public string Bundle { get; }
    /// <summary>Where the shim sends its events (our TtrpcServer listens here).</summary>
    public string EventsSocket { get; }
    /// <summary>The shim's own ttrpc address as printed by `start`, e.g. unix:///run/containerd/s/&lt;hash&gt;.</summary>
    public string ShimAddress { get; private set; } = "";

    public static RuncShimHarness Create()
    {
        var directory = Directory.CreateTempSubdirectory("dk-ttrpc-shim-").FullName;
        return new RuncShimHarness(directory, "c" + Guid.NewGuid().ToString("N")[..12]);
    }

    /// <summary>Writes the bundle; the container runs `sleep 300` until killed.</summary>
    public void PrepareBundle(string runc, string busybox)
    {
        Directory.CreateDirectory(Bundle);
        Run(runc, "spec", "--bundle", Bundle);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Bundle, "config.json")))!;
        config["process"]!["terminal"] = false;
        config["process"]!["args"] = new JsonArray("sleep", "300");
        File.WriteAllText(Path.Combine(Bundle, "config.json"), config.ToJsonString());

        var bin = Path.Combine(Bundle, "rootfs", "bin");
        Directory.CreateDirectory(bin);
        File.Copy(busybox, Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "sleep" }) File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");

        // containerd creates the log FIFO and reads it; the shim will not start without a reader.
        var log = Path.Combine(Bundle, "log");
        Libc.MkFifo(log, 0x1c0 /* 0700 */);
        StartHelper("cat", log);
    }

    /// <summary>Runs `shim start` and keeps the address it prints.</summary>
    public void StartShim(string shim)
    {
        var start = new ProcessStartInfo(shim, ["-namespace", Namespace, "-id", Id, "-address", Path.Combine(_directory, "containerd.sock"),
            "-publish-binary", "/usr/bin/containerd", "start"])
        {
            WorkingDirectory = Bundle,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["TTRPC_ADDRESS"] = EventsSocket;
        using var process = Process.Start(start)!;
        process.StandardInput.Close(); // start reads shim options from stdin until EOF
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(20_000))
        {
            process.Kill();
            throw new TimeoutException("shim start did not finish");
        }
        if (process.ExitCode != 0) throw new InvalidOperationException($"shim start failed ({process.ExitCode}): {errors.Result}");
        ShimAddress = output.Result.Trim();
    }

    /// <summary>The shim daemon's pid (from its Connect answer), so Dispose can kill exactly it.</summary>
    public void RememberShimPid(uint pid) => _shimPid = (int)pid;

    public void Dispose()
    {
        var runc = Integration.FindOnPath("runc");
        if (runc is not null) TryRun(runc, "--root", $"/run/containerd/runc/{Namespace}", "delete", "--force", Id);
        KillByPid(_shimPid);
        foreach (var helper in _helpers)
        {
            try { if (!helper.HasExited) helper.Kill(); helper.WaitForExit(5000); } catch (InvalidOperationException) { }
            helper.Dispose();
        }
        if (ShimAddress.StartsWith("unix://", StringComparison.Ordinal)) TryDelete(ShimAddress["unix://".Length..]);
        TryDeleteDirectory($"/run/containerd/runc/{Namespace}");
        TryDeleteDirectory(_directory);
    }

    private static void KillByPid(int pid)
    {
        if (pid <= 0) return;
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
            process.WaitForExit(5000);
        }
        catch (ArgumentException) { } // already gone
        catch (InvalidOperationException) { }
    }

    private void StartHelper(string program, params string[] args)
    {
        var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _helpers.Add(process);
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var errors = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {errors.Result}");
    }

    private static void TryRun(string program, params string[] args)
    {
        try { Run(program, args); } catch (InvalidOperationException) { }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { }
    }

    private static void TryDeleteDirectory(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); } catch (IOException) { }
    }
}
