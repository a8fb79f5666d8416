using System.Net.Sockets;
using System.Text;
using DiffKeeper.Common.Native;
using DiffKeeper.Store;

namespace DiffKeeper.Cli.Setup;

/// <summary>One finding of the node check: what was checked, whether it is fine, and what to run when it is not.</summary>
public sealed record NodeFinding(string Check, bool Ok, string Detail, string? Fix = null, bool Warning = false);

/// <summary>
/// `diffkeeper doctor` on a node: can this node record (kernel, libbpf, permissions), will containerd find the shim
/// and the CRI runtime, is the daemon up, has recording lost detail lately. Every check reads the real thing
/// (/sys, /proc, the config file, the socket); none starts or changes anything.
/// </summary>
public static class NodeCheck
{
    public const string ShimBinary = "containerd-shim-diffkeeper-v1";

    public static List<NodeFinding> Run(string containerdConfig, string socket, string storeDir)
    {
        var f = new List<NodeFinding>();
        // Kernel: CO-RE needs the kernel's BTF; the capture attaches raw tracepoints on writeback.
        f.Add(File.Exists("/sys/kernel/btf/vmlinux")
            ? new("kernel BTF", true, "/sys/kernel/btf/vmlinux present")
            : new("kernel BTF", false, "/sys/kernel/btf/vmlinux is missing: live capture is off, only exit states are recorded",
                "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (every current Debian, Ubuntu, RHEL and Fedora kernel is)"));
        var tp = TracepointsPresent();
        f.Add(tp.Missing.Count == 0
            ? new("tracepoints", true, "writeback_dirty_folio, writeback_mark_inode_dirty")
            : new("tracepoints", false, tp.Why ?? $"missing: {string.Join(", ", tp.Missing)}",
                tp.Why != null ? "see kernel BTF above" : "use a kernel ≥ 5.17 (writeback_dirty_folio); older kernels record exit states only"));
        f.Add(CanUseBpf(out var who)
            ? new("BPF permission", true, who)
            : new("BPF permission", false, who + ": loading eBPF needs root or CAP_BPF + CAP_PERFMON",
                "run diffkeeperd as root (the packaged systemd unit does); run doctor with sudo to check as the daemon would"));
        var bpf = Libbpf.Get();
        f.Add(bpf.Handle != 0
            ? new NodeFinding("libbpf", true, bpf.Source)
            : new("libbpf", false, $"no libbpf.so.1 loads ({bpf.Source}): live capture is off",
                "apt-get install libbpf1   (RHEL/Fedora: dnf install libbpf), or reinstall the diffkeeper package (it bundles one)"));

        // containerd: the shim on its PATH, our runtime in its CRI config.
        var cd = FindContainerd(containerdConfig);
        var searched = cd.Path;
        var shim = searched.Select(d => Path.Combine(d, ShimBinary)).FirstOrDefault(IsExecutable);
        f.Add(shim != null
            ? new("shim on containerd's PATH", true, shim + (cd.Pid is int p ? $" (containerd pid {p})" : " (containerd is not running; checked the default PATH)"))
            : new("shim on containerd's PATH", false, $"{ShimBinary} is in none of: {string.Join(':', searched)}",
                $"install -m 0755 {ShimBinary} /usr/local/bin/   (or install the diffkeeper package)"));
        f.Add(ConfigFinding(containerdConfig));

        // The daemon and its store.
        f.Add(SocketAnswers(socket)
            ? new("daemon socket", true, socket + " accepts connections")
            : new("daemon socket", false, $"nothing listens on {socket}: containers run, but are recorded only at exit (from the spool) once the daemon is back",
                "systemctl enable --now diffkeeperd   (why it stopped: journalctl -u diffkeeperd)"));
        if (!RecordingStore.Exists(storeDir))
            f.Add(new("store", false, $"no store at {storeDir}", "systemctl start diffkeeperd   (it creates the store)"));
        else
        {
            try
            {
                using var store = RecordingStore.Open(storeDir, readOnly: true);
                var recs = store.ListRecordings();
                f.Add(new("store", true, $"{storeDir}: {recs.Count} recordings"));
                long since = (DateTimeOffset.UtcNow.AddHours(-24).ToUnixTimeMilliseconds()) * 1_000_000;
                var gaps = new List<string>();
                foreach (var r in recs.Where(r => r.End >= since))
                    foreach (var e in store.ReadEvents(r.Id).Where(e => e.IsGap && e.Time >= since))
                        gaps.Add($"{r.Name ?? r.ContainerId ?? r.IdText}: {e.Detail}");
                f.Add(gaps.Count == 0
                    ? new("recent gaps", true, "no gaps in the last 24 h")
                    : new("recent gaps", false, $"{gaps.Count} gap(s) in the last 24 h; first: {gaps[0]}",
                        "see them with `diffkeeper timeline REC` (kind gap); frequent ones: raise [limits] in /etc/diffkeeper/config.toml", Warning: true));
            }
            catch (Exception e) when (e is IOException or DiffKeeper.Store.Rocks.RocksException or CorruptDataException)
            {
                f.Add(new("store", false, $"{storeDir} cannot be opened: {e.Message.Replace('\n', ' ')}", "diffkeeper --store " + storeDir + " doctor   (checks it in depth)"));
            }
        }
        return f;
    }


    private static NodeFinding ConfigFinding(string path)
    {
        const string check = "containerd config";
        const string fix = "diffkeeper setup containerd && systemctl restart containerd";
        string? text = File.Exists(path) ? File.ReadAllText(path) : null;
        if (text == null) return new(check, false, $"{path} does not exist: CRI (Kubernetes) has no diffkeeper runtime", fix);
        try
        {
            var plan = ContainerdConfigEditor.Plan(text, ContainerdSetup.DetectContainerdVersion());
            var warn = plan.Notes.FirstOrDefault(n => n.StartsWith("warning:", StringComparison.Ordinal));
            if (plan.Changed) return new(check, false, $"{path} has no runtime \"diffkeeper\": Kubernetes pods cannot use it (ctr/nerdctl --runtime still work)", fix);
            if (warn != null) return new(check, false, warn, $"remove the CRI plugin from disabled_plugins in {path}, then systemctl restart containerd");
            return new(check, true, $"{path} has runtime \"diffkeeper\" (config version {plan.ConfigVersion})");
        }
        catch (SetupException e)
        {
            return new(check, false, $"{path}: {e.Message}", "fix the config by hand, then: " + fix);
        }
    }

    /// <summary>The running system containerd (the one using <paramref name="config"/>) and the directories it finds shims in.</summary>
    private static (int? Pid, List<string> Path) FindContainerd(string config)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).Trim() != "containerd") continue;
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                int ci = Array.FindIndex(argv, a => a is "--config" or "-c");
                string used = ci >= 0 && ci + 1 < argv.Length ? argv[ci + 1] : argv.FirstOrDefault(a => a.StartsWith("--config=", StringComparison.Ordinal))?[9..] ?? "/etc/containerd/config.toml";
                if (Path.GetFullPath(used) != Path.GetFullPath(config)) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                var path = env.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
                var dirs = path.Split(':', StringSplitOptions.RemoveEmptyEntries).ToList();
                // containerd also looks beside its own executable.
                var exe = new FileInfo(Path.Combine(dir, "exe")).LinkTarget;
                if (exe != null && Path.GetDirectoryName(exe) is { } exeDir && !dirs.Contains(exeDir)) dirs.Add(exeDir);
                return (pid, dirs);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return (null, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".Split(':').ToList());
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;

    /// <summary>
    /// Every raw tracepoint has a `btf_trace_NAME` typedef in the kernel's BTF, which is readable without tracefs
    /// (not mounted on a fresh machine) and without CONFIG_KALLSYMS_ALL; the capture attaches exactly these.
    /// </summary>
    private static (List<string> Missing, string? Why) TracepointsPresent()
    {
        string[] wanted = ["writeback_dirty_folio", "writeback_mark_inode_dirty"];
        try
        {
            var btf = File.ReadAllBytes("/sys/kernel/btf/vmlinux");
            return (wanted.Where(w => btf.AsSpan().IndexOf(Encoding.ASCII.GetBytes("btf_trace_" + w + "\0")) < 0).ToList(), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (wanted.ToList(), "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): " + e.Message);
        }
    }

    private static bool CanUseBpf(out string who)
    {
        ulong eff = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("CapEff:", StringComparison.Ordinal)) eff = Convert.ToUInt64(line[7..].Trim(), 16);
        const int CapSysAdmin = 21, CapPerfmon = 38, CapBpf = 39;
        bool sysAdmin = (eff >> CapSysAdmin & 1) != 0, bpf = (eff >> CapBpf & 1) != 0, perfmon = (eff >> CapPerfmon & 1) != 0;
        who = $"this process: CapEff {eff:x}";
        if (sysAdmin) { who = "CAP_SYS_ADMIN (root)"; return true; }
        if (bpf && perfmon) { who = "CAP_BPF + CAP_PERFMON"; return true; }
        return false;
    }

    private static bool SocketAnswers(string path)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }

    public static string Format(IEnumerable<NodeFinding> findings)
    {
        var sb = new StringBuilder();
        foreach (var x in findings)
        {
            sb.Append(x.Ok ? "ok    " : x.Warning ? "warn  " : "FAIL  ").Append(x.Check.PadRight(26)).Append(x.Detail).Append('\n');
            if (!x.Ok && x.Fix != null) sb.Append("      ").Append(' ', 26).Append("fix: ").Append(x.Fix).Append('\n');
        }
        return sb.ToString();
    }
}
