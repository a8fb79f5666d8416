using System.Diagnostics;
using DiffKeeper.Common.Cgroups;
using DiffKeeper.Common.Mounts;

namespace DiffKeeper.Record.Tests;

/// <summary>
/// `diffkeeper record` as a user runs it: the real CLI in a scratch directory, with a store of its own and a
/// socket that does not exist (so `record` starts its private diffkeeperd, as on a CI runner without the service).
/// Every `record` it starts runs in a cgroup v2 of the harness's own (as in a CI job's cgroup), so the cgroups that
/// `record` makes are children of it: <see cref="Leftovers"/> looks there, and only there. Other runs of `record` on
/// the machine (another suite, a benchmark) make theirs elsewhere; looking machine-wide, as this harness did before,
/// made tests fail on another user's live command (session 9, docs/record.md).
/// Disposing kills what the harness's processes left in its cgroup, removes it, and removes the files.
/// </summary>
public sealed class RecordHarness : IDisposable
{
    public TempDir Dir { get; } = new("dk-record-test-", onDisk: true);
    public DaemonBinaries Bins { get; }
    public string Store => Path.Combine(Dir.Path, "store");
    public Cli Cli { get; }
    private readonly string _noSocket;
    /// <summary>The harness's cgroup (under the test runner's own v2 cgroup).</summary>
    public string Cgroup { get; }

    public RecordHarness()
    {
        Integration.Require(Integration.IsRoot, "needs root (a cgroup per recorded command, eBPF)");
        Integration.Require(Integration.HasTool("busybox"), "needs busybox");
        Integration.Require(File.Exists("/sys/kernel/btf/vmlinux"), "needs kernel BTF");
        Bins = Env.RequireDaemon();
        Integration.Require(Bins.BpfObject != null, "diffkeeper.bpf.o is missing beside the binaries: run `make build`");
        Cli = new Cli(Bins, Store);
        _noSocket = Path.Combine(Dir.Path, "no-daemon.sock");
        var mount = MountTable.Read().Where(m => m.FsType == "cgroup2" && m.Root == "/").Select(m => m.MountPoint).FirstOrDefault();
        Integration.Require(mount != null, "needs cgroup v2");
        var own = File.ReadLines("/proc/self/cgroup").First(l => l.StartsWith("0::", StringComparison.Ordinal))[3..].TrimEnd('/');
        Cgroup = Path.Join(mount, own, "dk-record-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Cgroup);
    }

    /// <summary><paramref name="psi"/>, changed to start inside <see cref="Cgroup"/>: a shell moves itself there and
    /// execs the program (same pid, same arguments, environment and directory).</summary>
    public ProcessStartInfo InCgroup(ProcessStartInfo psi)
    {
        var args = psi.ArgumentList.ToList();
        psi.ArgumentList.Clear();
        foreach (var x in (string[])["sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", Path.Join(Cgroup, "cgroup.procs"), psi.FileName, .. args])
            psi.ArgumentList.Add(x);
        psi.FileName = "busybox";
        return psi;
    }

    public string Sub(string name) => Dir.CreateSub(name);

    /// <summary>Starts `diffkeeper record ARGS` in <paramref name="cwd"/>; stdout and stderr captured.</summary>
    public Process Start(string cwd, params string[] args) => Start(cwd, ownProcessGroup: false, args);

    /// <summary>As <see cref="Start(string, string[])"/>, with `record` leading a process group of its own (a CI job's
    /// processes): the command is in it, the private daemon is not (it has its own session).</summary>
    public Process StartInOwnProcessGroup(string cwd, params string[] args) => Start(cwd, ownProcessGroup: true, args);

    private Process Start(string cwd, bool ownProcessGroup, string[] args)
    {
        string[] argv = ["--store", Store, "record", .. args];
        // busybox setsid execs in place (the process started here leads no group yet): the pid stays `record`'s.
        var psi = new ProcessStartInfo(ownProcessGroup ? "busybox" : Bins.Cli, ownProcessGroup ? ["setsid", Bins.Cli, .. argv] : argv)
        {
            WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        psi.Environment["DIFFKEEPER_SOCKET"] = _noSocket;
        psi.Environment.Remove("DIFFKEEPER_STORE");
        return Process.Start(InCgroup(psi))!;
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

    /// <summary>What the harness's `record` runs left: a cgroup `record` made (diffkeeper-record-*, with the processes
    /// in it), which `record` removes before it returns; a diffkeeperd process on our store.</summary>
    public List<string> Leftovers()
    {
        var left = new List<string>();
        foreach (var d in Directory.EnumerateDirectories(Cgroup, "diffkeeper-record-*", SearchOption.AllDirectories))
        {
            var procs = CgroupMembers.Of(d);
            left.Add($"cgroup {d}: {procs.Count} process(es) " + string.Join(", ", procs.Take(10).Select(m => $"{m.Pid} {m.Comm}")));
        }
        foreach (var (pid, cmdline) in DaemonsOn([Store])) left.Add($"process {pid}: {cmdline}");
        return left;
    }

    /// <summary>Fails with every leftover in full (Assert.Empty would cut each to 50 characters).</summary>
    public void AssertNoLeftovers()
    {
        var left = Leftovers();
        Assert.True(left.Count == 0, "left behind:\n" + string.Join("\n", left));
    }

    /// <summary>diffkeeperd processes running (not zombies) on one of <paramref name="stores"/>, by pid.</summary>
    private static IEnumerable<(int Pid, string Cmdline)> DaemonsOn(IReadOnlyCollection<string> stores)
    {
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid)) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' '); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (cmdline.Contains("diffkeeperd", StringComparison.Ordinal) && stores.Any(st => cmdline.Contains(st, StringComparison.Ordinal)) && Runs(pid))
                yield return (pid, cmdline);
        }
    }

    /// <summary>The private daemon's directory for this store (socket, log, pid file, locks), as `record` names it.</summary>
    public string PrivateDir => PrivateDirOf(Store);

    private static string PrivateDirOf(string store)
    {
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(store)))[..16];
        return Path.Combine(Directory.Exists("/run") ? "/run/diffkeeper-record" : Path.Combine(Path.GetTempPath(), "diffkeeper-record"), hash);
    }

    private readonly List<string> _otherStores = [];

    /// <summary>A store other than <see cref="Store"/> that a test's `record` runs use (the action's): its private
    /// daemon's directory is removed on dispose too.</summary>
    public void UsesStore(string store) => _otherStores.Add(store);

    /// <summary>True while <paramref name="pid"/> runs (a zombie does not: nothing may reap a daemon whose parent died).</summary>
    public static bool Runs(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException) { return false; }
    }

    public void Dispose()
    {
        // A daemon that a failed test left running: stopped by its pid (never by name).
        foreach (var (pid, _) in DaemonsOn([.. _otherStores.Prepend(Store)]))
        {
            try { Process.GetProcessById(pid).Kill(); }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { } // gone meanwhile
        }
        // The private daemons' directories for our stores (socket, log, locks).
        foreach (var store in _otherStores.Prepend(Store))
            try { if (Directory.Exists(PrivateDirOf(store))) Directory.Delete(PrivateDirOf(store), true); } catch (IOException) { }
        RemoveCgroup();
        Dir.Dispose();
    }

    /// <summary>Kills what is left in the harness's cgroup (survivors a test started on purpose, or after a failure:
    /// only processes started through <see cref="InCgroup"/> and their children are in it), then removes it and any
    /// cgroup `record` left in it.</summary>
    private void RemoveCgroup()
    {
        if (!Directory.Exists(Cgroup)) return;
        try { File.WriteAllText(Path.Combine(Cgroup, "cgroup.kill"), "1"); } catch (IOException) { }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var dirs = Directory.EnumerateDirectories(Cgroup, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(Cgroup).ToList();
        foreach (var d in dirs)
        {
            while (true)
            {
                try { Directory.Delete(d); break; }
                catch (DirectoryNotFoundException) { break; }
                catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); } // the killed are still exiting
            }
        }
    }
}
