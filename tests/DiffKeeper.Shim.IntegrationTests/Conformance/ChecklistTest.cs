using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>
/// Base of the checklist tests (docs/shim-contract.md#conformance-checklist): ctr helpers against the fixture's
/// containerd, ids unique per test and runtime, teardown that removes every container a test created (also when it
/// failed) and stray shims, and the "nothing left behind" assertion.
/// </summary>
public abstract class ChecklistTest : IAsyncLifetime
{
    private readonly List<string> _ids = new();

    protected ChecklistTest(ContainerdFixture fixture) => Fx = fixture;

    protected ContainerdFixture Fx { get; }
    protected PrivateContainerd Containerd => Fx.Containerd;
    protected ContainerdEventLog Events => Fx.Events;
    protected string Image => Fx.Image;

    protected string NewId(string item, string runtime, string? suffix = null)
    {
        var id = Fx.NewId(item, runtime, suffix);
        _ids.Add(id);
        return id;
    }

    protected Task<CommandResult> Ctr(params string[] args) => Fx.Ctr(args);
    protected Task<CommandResult> Ctr(TimeSpan timeout, params string[] args) => Fx.Ctr(timeout, args);

    /// <summary>`ctr run -d --runtime R IMAGE ID sleep 1000`, asserting it started.</summary>
    protected async Task<string> RunSleeperAsync(string item, string runtime, string? suffix = null, params string[] extraFlags)
    {
        var id = NewId(item, runtime, suffix);
        var r = await Ctr(new[] { "run", "-d", "--runtime", runtime }.Concat(extraFlags).Concat(new[] { Image, id, "sleep", "1000" }).ToArray());
        AssertExit(r, 0);
        await Fx.WaitForStatusAsync(id, "RUNNING");
        return id;
    }

    /// <summary>`ctr run -d --runtime R IMAGE ID true`, waiting until the task has exited (STOPPED).</summary>
    protected async Task<string> RunToExitAsync(string item, string runtime)
    {
        var id = NewId(item, runtime);
        AssertExit(await Ctr("run", "-d", "--runtime", runtime, Image, id, "true"), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        return id;
    }

    protected async Task KillAndRemoveAsync(string id)
    {
        AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
        await Fx.WaitForStatusAsync(id, "STOPPED");
        await RemoveTaskAndContainerAsync(id);
    }

    /// <summary>`task rm` then `container rm` of an exited task, both asserted to succeed.</summary>
    protected async Task RemoveTaskAndContainerAsync(string id)
    {
        AssertExit(await Ctr("task", "rm", id), 0);
        AssertExit(await Ctr("container", "rm", id), 0);
    }

    protected static void AssertExit(CommandResult r, int expected) =>
        Assert.True(r.ExitCode == expected, $"expected exit {expected}, got {r}");

    protected static void AssertContains(string expected, string actual, CommandResult? r = null) =>
        Assert.True(actual.Contains(expected, StringComparison.Ordinal), $"expected to find \"{expected}\" in:\n{(object?)r ?? actual}");

    /// <summary>
    /// Checklist item 34, applied after every test: no mount under the bundle, no shim socket for the group, no
    /// bundle or work dir, no runc state dir, and no shim process of this containerd still alive.
    /// </summary>
    protected async Task AssertNothingLeftBehindAsync(string id, string? groupId = null, bool allowSocketFile = false)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        List<string> problems;
        while (true)
        {
            problems = Leftovers(id, groupId, allowSocketFile);
            if (problems.Count == 0 || DateTime.UtcNow > deadline) break;
            await Task.Delay(100);
        }
        Assert.True(problems.Count == 0, $"left behind after {id}:\n  " + string.Join("\n  ", problems));
    }

    protected List<string> Leftovers(string id, string? groupId = null, bool allowSocketFile = false)
    {
        var problems = new List<string>();
        var bundle = Containerd.BundleDir(id);
        foreach (var m in ProcFs.MountPointsUnder(bundle)) problems.Add("mount " + m);
        var socket = Containerd.ShimSocketPath(groupId ?? id);
        if (!allowSocketFile && File.Exists(socket)) problems.Add("shim socket " + socket);
        if (Directory.Exists(bundle)) problems.Add("bundle dir " + bundle);
        if (Directory.Exists(Containerd.WorkDir(id))) problems.Add("work dir " + Containerd.WorkDir(id));
        if (Directory.Exists(PrivateContainerd.RuncStateDir(id))) problems.Add("runc state " + PrivateContainerd.RuncStateDir(id));
        foreach (var pid in Fx.LiveShimProcesses())
            problems.Add($"shim/runc process {pid}: {string.Join(' ', ProcFs.CommandLine(pid))}");
        return problems;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var id in _ids)
        {
            try { await Fx.RemoveContainerAsync(id); } catch (Exception) { /* fixture disposal retries */ }
        }
        // A shim that ignored Shutdown must not leak into the next test's leftover check.
        if (Fx.Root != "") await Fx.KillStrayShimsAsync(TimeSpan.FromSeconds(5));
    }
}
