using System.Globalization;
using DiffKeeper.Shim.IntegrationTests.Conformance;
using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Recording;

/// <summary>
/// Where our shim calls the recorder hook (docs/shim-contract.md#the-rootfs-and-the-recorders-window), pinned
/// through the diagnostic hook log against a real containerd: OnCreated sees the upperdir; OnExitedBeforeUnmount
/// runs after the init exit, in the safe window (rootfs still mounted, upperdir still there with what the container
/// wrote) — both from Delete(init) and, when the shim was SIGKILLed, from the <c>delete</c> subcommand. Our hook
/// only: no runc theory.
/// </summary>
[Collection(HookLogContainerdCollection.Name)]
public sealed class RecorderHookWindowTests(HookLogContainerdFixture fixture) : ChecklistTest(fixture)
{
    private const string Runtime = ShimRuntimes.DiffKeeper;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly HookLogContainerdFixture _fx = fixture;

    [SkippableFact]
    public async Task RunRm_HooksSeeTheUpperdir_ExitedHookRunsAfterTheExitBeforeTheUnmount_InOrder()
    {
        Fx.Require(Runtime);
        var id = NewId("rec", Runtime, "rm");

        AssertExit(await Ctr(TimeSpan.FromSeconds(60), "run", "--rm", "--runtime", Runtime, Image, id, "sh", "-c", "echo x > /f; exit 3"), 3);
        var exit = await Events.WaitForAsync(id, "/tasks/exit");
        await Events.WaitForAsync(id, "/tasks/delete");
        await Events.WaitForAsync(id, "/snapshot/remove");

        var log = HookLogEntry.ReadFor(_fx.HookLogPath, id);
        var context = $"hook log for {id}:\n  {string.Join("\n  ", log)}";
        var created = Assert.Single(log, e => e.Hook == HookLogEntry.Created);
        var exited = Assert.Single(log, e => e.Hook == HookLogEntry.ExitedBeforeUnmount);
        var deleted = Assert.Single(log, e => e.Hook == HookLogEntry.Deleted);

        Assert.True(created.RootfsMounted, context);
        Assert.False(string.IsNullOrEmpty(created.UpperDir), "OnCreated got no upperdir\n" + context);
        Assert.True(created.UpperDirExists == true, context);
        // The overlay snapshotter of this containerd: .../snapshots/<n>/fs under the fixture's root.
        Assert.StartsWith(Fx.Root + "/", created.UpperDir);
        Assert.EndsWith("/fs", created.UpperDir);

        // The safe window: after the init was reaped (it knows the status), before the unmount, served by the shim.
        Assert.Equal(3, exited.ExitStatus);
        Assert.Equal(created.ShimPid, exited.ShimPid);
        Assert.Equal(created.UpperDir, exited.UpperDir);
        Assert.True(exited.RootfsMounted, "rootfs already unmounted when OnExitedBeforeUnmount ran\n" + context);
        Assert.True(exited.UpperDirExists == true, "upperdir gone when OnExitedBeforeUnmount ran\n" + context);
        Assert.True(exited.UpperDirEntries.Contains("f"), "the file the container wrote is not in the upperdir\n" + context);
        Assert.True(exited.Time >= ExitedAt(exit), $"exited hook at {exited.Time:O} before the init exit {exit}\n{context}");

        Assert.False(deleted.RootfsMounted, "OnDeleted ran before the unmount\n" + context);
        Assert.True(created.Line < exited.Line && exited.Line < deleted.Line, "hooks out of order\n" + context);
        Assert.True(created.Time <= exited.Time && exited.Time <= deleted.Time, "hook times out of order\n" + context);

        // `--rm` removed the snapshot afterwards (containerd's garbage collector deletes the directory shortly after
        // /snapshot/remove): the window the hook had was the only one.
        await WaitUntilAsync(() => !Directory.Exists(created.UpperDir), $"{created.UpperDir} still exists after /snapshot/remove");
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableFact]
    public async Task KilledShim_DeleteSubcommand_CallsExitedHookWhileTheRootfsIsStillMounted()
    {
        Fx.Require(Runtime);
        var id = NewId("rec", Runtime, "kill");
        AssertExit(await Ctr("run", "-d", "--runtime", Runtime, Image, id, "sh", "-c", "echo y > /g; exec sleep 1000"), 0);
        await Fx.WaitForStatusAsync(id, "RUNNING");

        var created = await WaitForEntryAsync(id, HookLogEntry.Created);
        Assert.False(string.IsNullOrEmpty(created.UpperDir), "OnCreated got no upperdir: " + created);
        await WaitUntilAsync(() => File.Exists(Path.Combine(created.UpperDir!, "g")), $"{created.UpperDir}/g never appeared");
        var shim = await Fx.ShimPidAsync(id);
        Assert.Equal(created.ShimPid, shim);
        var rootfs = Path.Combine(Containerd.BundleDir(id), "rootfs");
        Assert.Contains(rootfs, ProcFs.MountPoints());

        Assert.Equal(0, Libc.Kill(shim, Libc.SIGKILL));
        await Events.WaitForAsync(id, "/tasks/exit");
        await Events.WaitForAsync(id, "/tasks/delete");
        Assert.Contains(Fx.Shims.CallsFor(id), c => c.Action == "delete");

        var log = HookLogEntry.ReadFor(_fx.HookLogPath, id);
        var context = $"hook log for {id}:\n  {string.Join("\n  ", log)}";
        var exited = Assert.Single(log, e => e.Hook == HookLogEntry.ExitedBeforeUnmount);
        Assert.NotEqual(shim, exited.ShimPid); // the `delete` subcommand, a process of its own
        Assert.Equal(137, exited.ExitStatus);
        Assert.Equal(created.UpperDir, exited.UpperDir);
        Assert.True(exited.RootfsMounted, "rootfs already unmounted when the delete subcommand called the hook\n" + context);
        Assert.True(exited.UpperDirExists == true, context);
        Assert.True(exited.UpperDirEntries.Contains("g"), "the file the container wrote is not in the upperdir\n" + context);
        Assert.True(created.Line < exited.Line, "hooks out of order\n" + context);

        await Fx.WaitForStatusAsync(id, null);
        Assert.DoesNotContain(rootfs, ProcFs.MountPoints());
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    private async Task<HookLogEntry> WaitForEntryAsync(string id, string hook)
    {
        HookLogEntry? found = null;
        await WaitUntilAsync(() => (found = HookLogEntry.ReadFor(_fx.HookLogPath, id).FirstOrDefault(e => e.Hook == hook)) != null,
            $"no {hook} hook call for {id} in {_fx.HookLogPath}");
        return found!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException(failure);
            await Task.Delay(50);
        }
    }

    /// <summary>The TaskExit event's exited_at (RFC 3339 with up to nanoseconds; .NET parses at most 7 digits).</summary>
    private static DateTime ExitedAt(ContainerdEvent exit)
    {
        var text = exit.Str("exited_at") ?? throw new Xunit.Sdk.XunitException("TaskExit without exited_at: " + exit);
        var dot = text.IndexOf('.');
        if (dot >= 0)
        {
            int end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end])) end++;
            var digits = text[(dot + 1)..end];
            text = text[..dot] + (digits.Length > 7 ? "." + digits[..7] : "." + digits) + text[end..];
        }
        return DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
    }
}
