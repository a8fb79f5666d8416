using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Runc;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// The container's init process: created by <c>runc create</c>, started by <c>runc start</c>; its legal moves are
/// in <see cref="ProcessMoves"/>. When its exit is published is the container's <see cref="ExitHold"/>'s business.
/// </summary>
internal sealed class InitProcess : ContainerProcess
{
    private readonly IRuncRunner _runc;

    public InitProcess(string containerId, StdioPaths stdio, IRuncRunner runc, ProcessIo? io, int pid) : base(containerId, stdio)
    {
        _runc = runc;
        AttachIo(io);
        Pid = pid;
    }

    protected override ProcessKind Kind => ProcessKind.Init;

    /// <summary>Finishes the exit: Stopped, Wait released. Called by the container in publishing order.</summary>
    public bool SetExited(ProcessExit exit) => MarkExited(exit);

    /// <summary><c>runc start</c>; <paramref name="onStarted"/> runs once it succeeded, before the next operation may run.</summary>
    public Task StartAsync(Action onStarted) => RunAsync(ProcessOperation.Start, async () =>
    {
        try { await _runc.StartAsync(Id); }
        catch (RuncException e)
        {
            throw TaskErrors.Unknown("OCI runtime start failed: " + (_runc.LastLoggedError() ?? e.Message));
        }
        MarkStarted(Pid);
        onStarted();
    });

    public Task PauseAsync() => RunAsync(ProcessOperation.Pause, async () =>
    {
        try { await _runc.PauseAsync(Id); }
        catch (RuncException e)
        {
            throw TaskErrors.Unknown("OCI runtime pause failed: " + (_runc.LastLoggedError() ?? e.Message));
        }
    });

    public Task ResumeAsync() => RunAsync(ProcessOperation.Resume, async () =>
    {
        try { await _runc.ResumeAsync(Id); }
        catch (RuncException e)
        {
            throw TaskErrors.Unknown("OCI runtime resume failed: " + (_runc.LastLoggedError() ?? e.Message));
        }
    });

    public async Task KillAsync(int signal, bool all)
    {
        Check(ProcessOperation.Kill);
        try { await _runc.KillAsync(Id, signal, all); }
        catch (RuncException e) { throw TaskErrors.FromKillError(e.Message); }
    }

    public async Task UpdateAsync(byte[] resourcesJson)
    {
        Check(ProcessOperation.Update);
        try { await _runc.UpdateAsync(Id, resourcesJson); }
        catch (RuncException e) { throw TaskErrors.Unknown("OCI runtime update failed: " + e.Message); }
    }

    /// <summary>
    /// Delete of a created or stopped init: drain output (bounded), <c>runc delete</c>, close stdio, then
    /// <paramref name="beforeUnmount"/> (the recorder's window) and <paramref name="unmount"/>.
    /// <paramref name="deleting"/> is told the state Delete was allowed in, before anything runs.
    /// </summary>
    public async Task DeleteAsync(Action<ProcessState> deleting, Func<Task> beforeUnmount, Action unmount)
    {
        string? error = null;
        await RunAsync(ProcessOperation.Delete, async () =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (Io != null) await Io.WaitOutputAsync(TimeSpan.FromSeconds(2));
            Diagnostics.ShimLog.Trace($"delete {Id}: output drained after {clock.ElapsedMilliseconds} ms");
            try
            {
                await _runc.DeleteAsync(Id, force: false);
            }
            catch (RuncException e) when (!e.Message.Contains("does not exist"))
            {
                error = "failed to delete task: " + (_runc.LastLoggedError() ?? e.Message);
            }
            catch (RuncException) { }
            Diagnostics.ShimLog.Trace($"delete {Id}: runc delete done after {clock.ElapsedMilliseconds} ms");
            Io?.Dispose();
            await beforeUnmount();
            unmount();
            Diagnostics.ShimLog.Trace($"delete {Id}: unmounted after {clock.ElapsedMilliseconds} ms");
        }, deleting);
        if (error != null) throw TaskErrors.Unknown(error);
    }
}
