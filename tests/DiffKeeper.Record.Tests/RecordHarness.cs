using System.Diagnostics;

namespace DiffKeeper.Record.Tests;

/// <summary>
/// `diffkeeper record` as a user runs it: the real CLI in a scratch directory, with a store of its own and a
/// socket that does not exist (so `record` starts its private diffkeeperd, as on a CI runner without the service).
/// Disposing checks that nothing is left behind (the private daemon, the command's cgroup) and removes the files.
/// </summary>
public sealed class RecordHarness : IDisposable
{
    public TempDir Dir { get; } = new("dk-record-test-", onDisk: true);
    public DaemonBinaries Bins { get; }
    public string Store => Path.Combine(Dir.Path, "store");
    public Cli Cli { get; }
    private readonly string _noSocket;

    public RecordHarness()
    {
        Integration.Require(Integration.IsRoot, "needs root (a cgroup per recorded command, eBPF)");
        Integration.Require(Integration.HasTool("busybox"), "needs busybox");
        Integration.Require(File.Exists("/sys/kernel/btf/vmlinux"), "needs kernel BTF");
        Bins = Env.RequireDaemon();
        Integration.Require(Bins.BpfObject != null, "diffkeeper.bpf.o is missing beside the binaries: run `make build`");
        Cli = new Cli(Bins, Store);
        _noSocket = Path.Combine(Dir.Path, "no-daemon.sock");
    }

    public string Sub(string name) => Dir.CreateSub(name);

    /// <summary>Starts `diffkeeper record ARGS` in <paramref name="cwd"/>; stdout and stderr captured.</summary>
    public Process Start(string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo(Bins.Cli, ["--store", Store, "record", .. args])
        {
            WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        psi.Environment["DIFFKEEPER_SOCKET"] = _noSocket;
        psi.Environment.Remove("DIFFKEEPER_STORE");
        return Process.Start(psi)!;
    }

    public (int Code, string Out, string Err) Run(string cwd, params string[] args)
    {
        using var p = Start(cwd, args);
        return Finish(p);
    }

    public static (int Code, string Out, string Err) Finish(Process p, int timeoutMs = 60_000)
    {
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs)) { p.Kill(true); throw new Xunit.Sdk.XunitException("diffkeeper record hung"); }
        p.WaitForExit();
        return (p.ExitCode, o.Result, e.Result);
    }

    /// <summary>The recording named <paramref name="name"/> (its id), from `ls --json`.</summary>
    public string RecordingId(string name)
    {
        var rows = Cli.Recordings().Where(r => r.GetProperty("name").GetString() == name).ToList();
        Assert.True(rows.Count == 1, $"expected one recording named {name}, found {rows.Count}");
        return rows[0].GetProperty("id").GetString()!;
    }

    /// <summary>Files and directories under <paramref name="root"/>: "d path" / "f path content" / "l path -> target".</summary>
    public static SortedSet<string> Tree(string root)
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        if (!Directory.Exists(root)) return set;
        foreach (var p in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var rel = Path.GetRelativePath(root, p);
            var fi = new FileInfo(p);
            if (fi.LinkTarget != null) set.Add($"l {rel} -> {fi.LinkTarget}");
            else if (Directory.Exists(p)) set.Add($"d {rel}");
            else set.Add($"f {rel} {File.ReadAllText(p)}");
        }
        return set;
    }

    /// <summary>The state of recording <paramref name="rec"/> at <paramref name="at"/>, exported and listed.</summary>
    public SortedSet<string> ExportAt(string rec, string at)
    {
        var outDir = Path.Combine(Dir.Path, "export-" + Guid.NewGuid().ToString("N")[..8]);
        Cli.Export(rec, at, outDir);
        try { return Tree(outDir); }
        finally { Directory.Delete(outDir, true); }
    }

    /// <summary>The cgroups `record` makes (diffkeeper-record-*) that still exist, and diffkeeperd processes on our store.</summary>
    public List<string> Leftovers()
    {
        var left = new List<string>();
        foreach (var cg in new[] { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" })
        {
            if (!Directory.Exists(cg)) continue;
            foreach (var d in Directory.EnumerateDirectories(cg, "diffkeeper-record-*", SearchOption.AllDirectories))
                if (File.Exists(Path.Combine(d, "cgroup.procs")) && File.ReadAllText(Path.Combine(d, "cgroup.procs")).Trim().Length > 0) left.Add(d);
        }
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains("diffkeeperd", StringComparison.Ordinal) && cmdline.Contains(Store, StringComparison.Ordinal))
                {
                    var stat = File.ReadAllText(Path.Combine(proc, "stat"));
                    if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z')) continue;
                    left.Add("process " + Path.GetFileName(proc) + ": " + cmdline);
                }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return left;
    }

    public void Dispose()
    {
        // A daemon that a failed test left running: stopped by its pid (never by name).
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains("diffkeeperd", StringComparison.Ordinal) && cmdline.Contains(Store, StringComparison.Ordinal))
                    Process.GetProcessById(pid).Kill();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException) { }
        }
        // The private daemon's directory for this store (socket, log, locks), as `record` names it.
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Store)))[..16];
        foreach (var d in new[] { "/run/diffkeeper-record", Path.Combine(Path.GetTempPath(), "diffkeeper-record") })
            try { if (Directory.Exists(Path.Combine(d, hash))) Directory.Delete(Path.Combine(d, hash), true); } catch (IOException) { }
        Dir.Dispose();
    }
}
