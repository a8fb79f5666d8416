using System.Runtime.InteropServices;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// The one owner of wait4 in the shim. The shim is a child subreaper, so container processes (re-parented after
/// runc double-forks) and runc itself are all reaped here.
/// <para>Children the shim launches itself (runc, logging binaries) are registered while the registration lock is
/// held across the spawn, so their exit is always handed back to the launcher. Every other exit (container
/// processes) goes to <see cref="UnownedExit"/> in reaping order.</para>
/// </summary>
public sealed class Reaper
{
    private readonly object _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<ProcessExit>> _launched = new();
    private readonly AutoResetEvent _sigchld = new(false);
    private PosixSignalRegistration? _registration;
    private Thread? _thread;

    /// <summary>Exits of processes the shim did not spawn itself; called on the reaper thread, must not block.</summary>
    internal event Action<ProcessExit>? UnownedExit;

    public void Start()
    {
        if (_thread != null) return;
        LibC.prctl(LibC.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        _registration = PosixSignalRegistration.Create((PosixSignal)LibC.SIGCHLD, ctx => _sigchld.Set());
        _thread = new Thread(Loop, maxStackSize: 256 * 1024) { IsBackground = true, Name = "reaper" };
        _thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="spawn"/> (which returns a pid) with reaping of its result held back until the pid is
    /// registered, so an immediate exit cannot be mistaken for an unknown process.
    /// </summary>
    internal Task<ProcessExit> Launch(Func<int> spawn, out int pid)
    {
        var tcs = new TaskCompletionSource<ProcessExit>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            pid = spawn();
            _launched[pid] = tcs;
        }
        _sigchld.Set();
        return tcs.Task;
    }

    private unsafe void Loop()
    {
        while (true)
        {
            // The timeout is a safety net for a coalesced or missed SIGCHLD, not the main path.
            _sigchld.WaitOne(TimeSpan.FromSeconds(2));
            while (true)
            {
                int status;
                int pid = LibC.wait4(-1, &status, LibC.WNOHANG, null);
                if (pid <= 0)
                {
                    if (pid < 0 && LibC.LastErrno == LibC.EINTR) continue;
                    break; // 0: children alive but none exited; ECHILD: no children.
                }
                var exit = new ProcessExit(pid, LibC.DecodeWaitStatus(status), DateTime.UtcNow);
                TaskCompletionSource<ProcessExit>? owner;
                lock (_gate) _launched.Remove(pid, out owner);
                if (owner != null)
                {
                    owner.TrySetResult(exit);
                    continue;
                }
                try
                {
                    UnownedExit?.Invoke(exit);
                }
                catch (Exception e)
                {
                    ShimLog.Error($"handling exit of pid {pid}: {e.Message}");
                }
            }
        }
    }
}
