using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// One private containerd for a test collection: temp root, shims under test on its PATH (through logging
/// wrappers), the busybox image imported into namespace "dk", and a `ctr events` subscriber for its lifetime.
/// Missing prerequisites make tests skip, or fail when DIFFKEEPER_REQUIRE_INTEGRATION=1.
/// </summary>
public class ContainerdFixture : IAsyncLifetime
{
    private static readonly string[] RequiredTools = { "containerd", "ctr", "runc", "script", ShimRuntimes.BinaryName(ShimRuntimes.Runc) };

    private string? _notReady;
    private readonly HashSet<string> _idsHandedOut = new();

    public string Root { get; private set; } = "";
    public string RunToken { get; } = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..4];
    public PrivateContainerd Containerd { get; private set; } = null!;
    public ShimInstallation Shims { get; private set; } = null!;
    public ContainerdEventLog Events { get; private set; } = null!;
    public string Image => BusyboxOciImage.Name;

    public async Task InitializeAsync()
    {
        _notReady = MissingPrerequisite();
        if (_notReady != null) return;
        try
        {
            Root = Directory.CreateTempSubdirectory("dk-test-").FullName;
            Shims = new ShimInstallation(Root);
            Shims.Install(ShimRuntimes.Runc, Integration.FindOnPath(ShimRuntimes.BinaryName(ShimRuntimes.Runc)), null);
            var (dk, why) = await Binaries.LocateOrPublishAsync(ShimRuntimes.BinaryName(ShimRuntimes.DiffKeeper), "src/DiffKeeper.Shim");
            Shims.Install(ShimRuntimes.DiffKeeper, dk, why);

            await BeforeContainerdStartsAsync();
            var archive = Path.Combine(Root, "busybox-oci.tar");
            await BusyboxOciImage.WriteArchiveAsync(archive, ExtraImageBinaries());
            Containerd = new PrivateContainerd(Root, Shims.BinDir, RecorderIsolation().Concat(ContainerdEnvironment())
                .GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value)) { CriPlugin = CriPlugin() };
            await Containerd.StartAsync();
            var import = await Containerd.CtrAsync(new[] { "image", "import", archive }, TimeSpan.FromSeconds(60));
            if (import.ExitCode != 0) throw new InvalidOperationException("image import failed:\n" + import);
            await StartEventLogAsync();
        }
        catch (Exception e)
        {
            _notReady = "fixture setup failed: " + e;
        }
    }

    /// <summary>Runs once <see cref="Root"/> and the shims are in place, before containerd starts (e.g. a daemon the shims talk to).</summary>
    protected virtual Task BeforeContainerdStartsAsync() => Task.CompletedTask;

    /// <summary>The CRI plugin's configuration (<see cref="PrivateContainerd.CriPlugin"/>): null, the default, keeps it off.
    /// Called once <see cref="Root"/> and the shims are in place.</summary>
    protected virtual string? CriPlugin() => null;

    /// <summary>Executables copied into the test image's /bin (besides busybox and its applets).</summary>
    protected virtual IReadOnlyList<string> ExtraImageBinaries() => [];

    /// <summary>
    /// The shim's recorder, kept inside this run: no daemon (a socket path that does not exist, so a diffkeeperd a
    /// developer runs on this machine is never involved) and a store under <see cref="Root"/>, so the spool entries
    /// every diffkeeper container leaves at its exit go away with the run instead of into /var/lib/diffkeeper.
    /// </summary>
    private Dictionary<string, string> RecorderIsolation() => new()
    {
        ["DIFFKEEPER_SOCKET"] = Path.Combine(Root, "no-diffkeeperd.sock"),
        ["DIFFKEEPER_STORE"] = Path.Combine(Root, "store"),
    };

    /// <summary>Extra environment for containerd (and so for every shim it starts), over the recorder isolation
    /// above; called once <see cref="Root"/> is set.</summary>
    protected virtual IReadOnlyDictionary<string, string> ContainerdEnvironment() => new Dictionary<string, string>();

    /// <summary>(Re)starts the `ctr events` subscriber and waits until it demonstrably receives events.</summary>
    public async Task StartEventLogAsync()
    {
        Events?.Dispose();
        Events = new ContainerdEventLog("ctr", Containerd.Address);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        for (var n = 0; DateTime.UtcNow < deadline; n++)
        {
            // Labelling the namespace publishes /namespaces/update: proof that the subscription is live.
            await ExternalCommand.RunAsync("ctr", new[] { "-a", Containerd.Address, "namespaces", "label", PrivateContainerd.Namespace, $"dk.ping={n}" }, TimeSpan.FromSeconds(5));
            await Task.Delay(100);
            if (Events.All.Any(e => e.Topic == "/namespaces/update")) return;
        }
        throw new InvalidOperationException("ctr events subscriber saw nothing");
    }

    /// <summary>Skips (or fails, in CI) when the fixture or the runtime under test is unavailable.</summary>
    public void Require(string runtime)
    {
        var reason = _notReady ?? (Shims.UnavailableReason(runtime) is { } why ? $"runtime {runtime} unavailable: {why}" : null);
        Integration.Require(reason == null, reason!);
    }

    /// <summary>A container id unique to this run, checklist item and runtime, e.g. "i03-dk-4f2a".</summary>
    public string NewId(string item, string runtime, string? suffix = null)
    {
        var id = $"{item}-{ShimRuntimes.Tag(runtime)}{(suffix == null ? "" : "-" + suffix)}-{RunToken}";
        lock (_idsHandedOut) _idsHandedOut.Add(id);
        return id;
    }

    public Task<CommandResult> Ctr(params string[] args) => Containerd.CtrAsync(args);
    public Task<CommandResult> Ctr(TimeSpan timeout, params string[] args) => Containerd.CtrAsync(args, timeout);

    /// <summary>`ctr task ls` as id → (pid, status).</summary>
    public async Task<Dictionary<string, (int Pid, string Status)>> TasksAsync()
    {
        var r = await Ctr("task", "ls");
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException("ctr task ls failed:\n" + r);
        var result = new Dictionary<string, (int, string)>();
        foreach (var line in r.Stdout.Split('\n').Skip(1))
        {
            var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 3 && int.TryParse(f[1], out var pid)) result[f[0]] = (pid, f[2]);
        }
        return result;
    }

    public async Task<string?> StatusAsync(string id) => (await TasksAsync()).TryGetValue(id, out var t) ? t.Status : null;

    public async Task WaitForStatusAsync(string id, string? status, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        string? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await StatusAsync(id);
            if (last == status) return;
            await Task.Delay(50);
        }
        throw new Xunit.Sdk.XunitException($"task {id}: expected status {status ?? "<no task>"}, still {last ?? "<no task>"}");
    }

    /// <summary>The shim serving a running task: the parent of its init (the shim is a child subreaper).</summary>
    public async Task<int> ShimPidAsync(string id)
    {
        var tasks = await TasksAsync();
        if (!tasks.TryGetValue(id, out var t) || t.Pid <= 0) throw new Xunit.Sdk.XunitException($"task {id} has no pid");
        return ProcFs.ParentPid(t.Pid) ?? throw new Xunit.Sdk.XunitException($"task {id}: init pid {t.Pid} vanished");
    }

    /// <summary>Best-effort removal of a container and its task; used by test teardown, also after failures.</summary>
    public async Task RemoveContainerAsync(string id)
    {
        if (_notReady != null) return;
        var tasks = await TasksAsync().ConfigureAwait(false);
        if (tasks.ContainsKey(id))
        {
            await Ctr(TimeSpan.FromSeconds(10), "task", "kill", "-a", "-s", "SIGKILL", id);
            await Ctr(TimeSpan.FromSeconds(15), "task", "rm", "-f", id);
        }
        await Ctr(TimeSpan.FromSeconds(10), "container", "rm", id);
    }

    /// <summary>Shim (and runc) processes of this containerd still alive: found by the TTRPC_ADDRESS marker.</summary>
    public List<int> LiveShimProcesses() => ProcFs.ProcessesWithTtrpcAddressUnder(Root);

    public async Task KillStrayShimsAsync(TimeSpan grace)
    {
        var deadline = DateTime.UtcNow + grace;
        while (LiveShimProcesses().Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        foreach (var pid in LiveShimProcesses()) Libc.Kill(pid, Libc.SIGKILL);
    }

    public virtual async Task DisposeAsync()
    {
        if (Root == "") return;
        if (Containerd == null)
        {
            try { Directory.Delete(Root, recursive: true); } catch (Exception) { /* best effort */ }
            return;
        }
        try
        {
            if (Containerd.Pid != null)
            {
                foreach (var id in (await TasksAsync()).Keys) await RemoveContainerAsync(id);
                var containers = await Ctr("container", "ls", "-q");
                foreach (var id in containers.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)) await RemoveContainerAsync(id.Trim());
            }
        }
        catch (Exception) { /* keep tearing down */ }
        Events?.Dispose();
        await Containerd.StopAsync();
        await KillStrayShimsAsync(TimeSpan.FromSeconds(2));
        List<string> ids;
        lock (_idsHandedOut) ids = _idsHandedOut.ToList();
        foreach (var id in ids)
        {
            // Containers whose shim died: ask runc to forget them; remove leaked shim sockets of our ids.
            if (Directory.Exists(PrivateContainerd.RuncStateDir(id)))
                await ExternalCommand.RunAsync("runc", new[] { "--root", "/run/containerd/runc/" + PrivateContainerd.Namespace, "delete", "--force", id }, TimeSpan.FromSeconds(10));
            TryDelete(Containerd.ShimSocketPath(id));
        }
        foreach (var socket in ExtraSocketsToRemove) TryDelete(socket);
        foreach (var mount in ProcFs.MountPointsUnder(Root).OrderByDescending(m => m.Length)) Libc.Umount2(mount, Libc.MNT_DETACH);
        try { Directory.Delete(Root, recursive: true); } catch (Exception) { /* best effort */ }
    }

    /// <summary>Sockets created outside containerd's knowledge (hand-started shims) that disposal must remove.</summary>
    public List<string> ExtraSocketsToRemove { get; } = new();

    private static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static string? MissingPrerequisite()
    {
        if (!OperatingSystem.IsLinux()) return "not Linux";
        if (!Integration.IsRoot) return "not root";
        foreach (var tool in RequiredTools)
            if (!Integration.HasTool(tool)) return $"{tool} not found on PATH";
        if (!File.Exists(BusyboxOciImage.BusyboxPath)) return "busybox-static (/bin/busybox) missing";
        return null;
    }
}

[CollectionDefinition(Name)]
public sealed class ContainerdCollection : ICollectionFixture<ContainerdFixture>
{
    public const string Name = "private containerd";
}
