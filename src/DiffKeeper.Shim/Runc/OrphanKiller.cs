using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Runc;

/// <summary>
/// After the init of a container without a pid namespace of its own exits, its other processes live on (nothing
/// kills a namespace that is not there): <c>runc kill --all ID SIGKILL</c> signals every process in its cgroup.
/// The caller awaits it before publishing the exit.
/// </summary>
internal static class OrphanKiller
{
    /// <summary>
    /// A frozen or wedged cgroup must not hold the exit back for ever: past this the exit is published anyway
    /// (a late exit is worse for containerd and CRI than a rare straggler, which runc delete kills again).
    /// </summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    public static async Task KillAllAsync(IRuncRunner runc, string id)
    {
        try
        {
            var kill = runc.KillAsync(id, LibC.SIGKILL, all: true);
            if (await Task.WhenAny(kill, Task.Delay(Bound)) == kill) await kill;
            else ShimLog.Warn($"runc kill --all {id} still running after {Bound.TotalSeconds:0} s; publishing the exit");
        }
        catch (Exception e)
        {
            // Typically "container not running" once everything is already gone.
            ShimLog.Trace($"kill --all after init exit of {id}: {e.Message}");
        }
    }
}
