using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>
/// A container without a pid namespace of its own (here: the host's) whose init dies: the shim kills every other
/// process of the container (`runc kill --all`, to completion) before it publishes the exit, so a client that sees
/// the exit can rely on them being gone (containerd's TestContainerKillInitPidHost; issue 8).
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class KillAllTests(ContainerdFixture fixture, ITestOutputHelper output) : ChecklistTest(fixture)
{
    private const int Rounds = 8;
    private const int Children = 5;

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task KillAll01_HostPidContainer_InitKilled_NoProcessLeftWhenTheExitIsSeen(string runtime)
    {
        Fx.Require(runtime);
        for (int round = 0; round < Rounds; round++)
        {
            var id = NewId("k01", runtime, round.ToString());
            // The host's pid namespace, named through containerd's own process (pid 1 may not be ours to open).
            AssertExit(await Ctr("run", "-d", "--runtime", runtime, "--with-ns", $"pid:/proc/{Containerd.Pid}/ns/pid", Image, id,
                "sh", "-c", $"for n in $(seq {Children}); do sleep 1000 & done; exec sleep 1000"), 0);
            await Fx.WaitForStatusAsync(id, "RUNNING");
            var init = (await Fx.TasksAsync())[id].Pid;
            var children = await ChildrenAsync(init, Children);

            // Look the moment the exit event arrives (on the event reader's thread), not after a polling delay.
            var seen = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnEvent(ContainerdEvent e)
            {
                if (e.ContainerId == id && e.Topic == "/tasks/exit")
                    seen.TrySetResult(children.Where(StillRuns).Select(p => $"{p} {ProcFs.StatusField(p, "State")}").ToList());
            }
            Events.Received += OnEvent;
            try
            {
                AssertExit(await Ctr("task", "kill", "-s", "SIGKILL", id), 0);
                var alive = await seen.Task.WaitAsync(TimeSpan.FromSeconds(15));
                Assert.True(alive.Count == 0,
                    $"{runtime} round {round}: when the exit was seen, {alive.Count} of the container's processes still ran: {string.Join(", ", alive)}");
            }
            finally
            {
                Events.Received -= OnEvent;
            }
            Assert.Equal(137, (await Events.WaitForAsync(id, "/tasks/exit")).ExitStatus);
            await RemoveTaskAndContainerAsync(id);
            await AssertNothingLeftBehindAsync(id);
        }
        output.WriteLine($"{runtime}: {Rounds} rounds, {Children} orphans each, none left when the exit was seen");
    }

    /// <summary>Waits until <paramref name="init"/> has its <paramref name="count"/> children (host pids).</summary>
    private static async Task<List<int>> ChildrenAsync(int init, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var children = ProcFs.AllPids().Where(p => ProcFs.ParentPid(p) == init).ToList();
            if (children.Count >= count) return children;
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"init {init} has {children.Count} children, expected {count}");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Still able to run: present, not a zombie (or dead), and without SIGKILL pending. A process whose SIGKILL is
    /// pending never runs another instruction of its own, it only has not finished dying.
    /// </summary>
    private static bool StillRuns(int pid)
    {
        var status = ProcFs.Status(pid);
        if (status == null) return false;
        string Field(string name) =>
            status.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..].Trim() ?? "";
        if (Field("State").StartsWith('Z') || Field("State").StartsWith('X')) return false;
        const ulong sigkill = 1UL << (9 - 1);
        foreach (var pending in new[] { Field("SigPnd"), Field("ShdPnd") })
            if (pending.Length > 0 && (Convert.ToUInt64(pending, 16) & sigkill) != 0) return false;
        return true;
    }
}
