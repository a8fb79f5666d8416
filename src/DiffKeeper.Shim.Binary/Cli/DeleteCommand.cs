using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Mounts;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Service;
using Google.Protobuf;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// <c>delete</c>: containerd's cleanup after every shim connection closes (and after a shim died).
/// <c>runc delete --force</c>, the recorder's window, unmount the rootfs, remove a dead shim's socket, and print a
/// raw DeleteResponse {pid, 137, now}. Must finish within containerd's 5 s and never stop a live grouped shim.
/// </summary>
internal static class DeleteCommand
{
    private static readonly TimeSpan RuncBound = TimeSpan.FromSeconds(3);

    /// <summary>containerd kills <c>delete</c> after 5 s; everything here must be done well before.</summary>
    private static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(4500);

    public static async Task<int> RunAsync(ShimFlags flags, RecorderSettings recorderSettings)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var bundle = new BundlePaths(flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory());
        var state = BundleState.Load(bundle.Directory, flags.Namespace);
        var reaper = new Reaper();
        reaper.Start();
        var runc = new RuncCommand(new RuncSettings(state.RuncBinary, state.RuncRoot, bundle.RuncLog, state.SystemdCgroup), reaper);

        int pid = BundlePaths.ReadPid(bundle.InitPidFile) ?? 0;

        try
        {
            var delete = runc.DeleteAsync(flags.Id, force: true);
            if (await Task.WhenAny(delete, Task.Delay(RuncBound)) == delete) await delete;
            else ShimLog.Warn($"runc delete --force {flags.Id} timed out");
        }
        catch (RuncException e)
        {
            ShimLog.Warn($"runc delete --force {flags.Id}: {e.Message}");
        }

        var rootfs = bundle.Rootfs;
        var info = new ContainerRecordInfo(flags.Namespace, flags.Id, bundle.Directory, rootfs, state.UpperDir, pid);
        // Still mounted means the shim never got to Delete(init) (it died): this is the recorder's last chance.
        if (RootfsMounter.IsMountPoint(rootfs))
        {
            // What is left of the 5 s after runc delete, less one daemon call and the unmount, capped at 1.5 s.
            var left = Budget - clock.Elapsed - recorderSettings.Timeout - TimeSpan.FromMilliseconds(500);
            var freeze = TimeSpan.FromMilliseconds(Math.Clamp(left.TotalMilliseconds, 200,
                Math.Min(recorderSettings.FreezeBudget.TotalMilliseconds, RecorderSettings.DeleteSubcommandFreezeBudget.TotalMilliseconds)));
            var settings = recorderSettings with { FreezeBudget = freeze };
            var hook = RecorderHooks.Create(flags.Address, settings, "delete");
            await new BoundedRecorderHook(hook, freeze + settings.Timeout + TimeSpan.FromMilliseconds(300)).ExitedBeforeUnmountAsync(info, 137);
        }
        if (!RootfsMounter.UnmountAll(rootfs)) ShimLog.Warn($"failed to unmount {rootfs}");

        RemoveDeadSocket(bundle);

        var response = new DeleteResponse
        {
            Pid = (uint)pid, ExitStatus = 137, ExitedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow),
        };
        using var stdout = Console.OpenStandardOutput();
        response.WriteTo(stdout);
        stdout.Flush();
        return 0;
    }

    /// <summary>A shim killed with SIGKILL leaves its socket file; remove it only if nothing answers there.</summary>
    private static void RemoveDeadSocket(BundlePaths bundle)
    {
        try
        {
            var addressFile = bundle.Address;
            if (!File.Exists(addressFile)) return;
            var socketPath = ShimAddress.SocketPath(File.ReadAllText(addressFile).Trim());
            if (socketPath.StartsWith(ShimAddress.SocketDirectory + "/", StringComparison.Ordinal) &&
                File.Exists(socketPath) && !StartCommand.IsLive(socketPath))
                File.Delete(socketPath);
        }
        catch (Exception e)
        {
            ShimLog.Warn($"removing dead shim socket: {e.Message}");
        }
    }
}
