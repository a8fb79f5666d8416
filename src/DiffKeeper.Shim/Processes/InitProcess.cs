using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Service;
using Status = DiffKeeper.Shim.Protos.TaskTypes.Status;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// The container's init process: created by <c>runc create</c>, started by <c>runc start</c>.
/// Created → Running ⇄ (Pausing →) Paused → Stopped → Deleted. An exit that arrives while Start is still
/// running is held back until TaskStart was published (start must precede exit).
/// </summary>
internal sealed class InitProcess : ContainerProcess
{
    private readonly RuncCommand _runc;
    private bool _starting;
    private bool _deletingUnstarted;
    private ProcessExit? _exitDuringStart;

    public InitProcess(string containerId, StdioPaths stdio, RuncCommand runc, ProcessIo io, int pid) : base(containerId, stdio)
    {
        _runc = runc;
        Io = io;
        Pid = pid;
    }

    /// <summary>Called with the exit once Start finished (or at once): the container decides when to publish.</summary>
    public Action<ProcessExit>? ExitObserved { get; set; }

    public override Status ReportedStatus => ToStatus(State);

    public void OnExit(ProcessExit exit)
    {
        lock (Gate)
        {
            if (_deletingUnstarted || State == ProcessState.Deleted) return;
            if (_starting) { _exitDuringStart = exit; return; }
        }
        ExitObserved?.Invoke(exit);
    }

    /// <summary>Finishes the exit: Stopped, Wait released. Called by the container in publishing order.</summary>
    public bool SetExited(ProcessExit exit) => MarkExited(exit);

    public async Task StartAsync(Action onStarted)
    {
        await Operations.WaitAsync();
        ProcessExit? held;
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Created: break;
                    case ProcessState.Running or ProcessState.Pausing: throw TaskErrors.Unknown("cannot start a running process");
                    case ProcessState.Paused: throw TaskErrors.Unknown("cannot start a paused process");
                    case ProcessState.Stopped: throw TaskErrors.Unknown("cannot start a stopped process");
                    default: throw TaskErrors.Unknown("cannot start a deleted process");
                }
                _starting = true;
            }
            try
            {
                await _runc.StartAsync(Id);
                lock (Gate) if (State == ProcessState.Created) State = ProcessState.Running;
                onStarted();
            }
            catch (RuncException e)
            {
                throw TaskErrors.Unknown("OCI runtime start failed: " + (_runc.LastLoggedError() ?? e.Message));
            }
            finally
            {
                lock (Gate)
                {
                    _starting = false;
                    held = _exitDuringStart;
                    _exitDuringStart = null;
                }
            }
        }
        finally
        {
            Operations.Release();
        }
        if (held.HasValue) ExitObserved?.Invoke(held.Value);
    }

    public async Task PauseAsync()
    {
        await Operations.WaitAsync();
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Running: State = ProcessState.Pausing; break;
                    case ProcessState.Created: throw TaskErrors.Unknown("cannot pause task in created state");
                    case ProcessState.Paused or ProcessState.Pausing: throw TaskErrors.Unknown("cannot pause a paused container");
                    case ProcessState.Stopped: throw TaskErrors.Unknown("cannot pause a stopped container");
                    default: throw TaskErrors.Unknown("cannot pause a deleted process");
                }
            }
            try
            {
                await _runc.PauseAsync(Id);
                lock (Gate) if (State == ProcessState.Pausing) State = ProcessState.Paused;
            }
            catch (RuncException e)
            {
                lock (Gate) if (State == ProcessState.Pausing) State = ProcessState.Running;
                throw TaskErrors.Unknown("OCI runtime pause failed: " + (_runc.LastLoggedError() ?? e.Message));
            }
        }
        finally
        {
            Operations.Release();
        }
    }

    public async Task ResumeAsync()
    {
        await Operations.WaitAsync();
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Paused: break;
                    case ProcessState.Created: throw TaskErrors.Unknown("cannot resume task in created state");
                    case ProcessState.Running or ProcessState.Pausing: throw TaskErrors.Unknown("cannot resume a running process");
                    case ProcessState.Stopped: throw TaskErrors.Unknown("cannot resume a stopped container");
                    default: throw TaskErrors.Unknown("cannot resume a deleted process");
                }
            }
            try
            {
                await _runc.ResumeAsync(Id);
                lock (Gate) if (State == ProcessState.Paused) State = ProcessState.Running;
            }
            catch (RuncException e)
            {
                throw TaskErrors.Unknown("OCI runtime resume failed: " + (_runc.LastLoggedError() ?? e.Message));
            }
        }
        finally
        {
            Operations.Release();
        }
    }

    public async Task KillAsync(int signal, bool all)
    {
        lock (Gate)
        {
            if (State == ProcessState.Deleted) throw TaskErrors.NotFound("cannot kill a deleted process");
        }
        try
        {
            await _runc.KillAsync(Id, signal, all);
        }
        catch (RuncException e)
        {
            throw TaskErrors.FromKillError(e.Message);
        }
    }

    public async Task UpdateAsync(byte[] resourcesJson)
    {
        lock (Gate)
        {
            if (State == ProcessState.Stopped) throw TaskErrors.Unknown("cannot update a stopped container");
            if (State == ProcessState.Deleted) throw TaskErrors.Unknown("cannot update a deleted process");
        }
        try
        {
            await _runc.UpdateAsync(Id, resourcesJson);
        }
        catch (RuncException e)
        {
            throw TaskErrors.Unknown("OCI runtime update failed: " + e.Message);
        }
    }

    /// <summary>
    /// Delete of a created or stopped init: drain output (bounded), <c>runc delete</c>, close stdio, then
    /// <paramref name="beforeUnmount"/> (the recorder's window) and <paramref name="unmount"/>.
    /// </summary>
    public async Task DeleteAsync(Func<Task> beforeUnmount, Action unmount)
    {
        await Operations.WaitAsync();
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Created: _deletingUnstarted = true; break;
                    case ProcessState.Stopped: break;
                    case ProcessState.Running or ProcessState.Pausing: throw TaskErrors.Unknown("cannot delete a running process");
                    case ProcessState.Paused: throw TaskErrors.Unknown("cannot delete a paused process");
                    default: throw TaskErrors.NotFound("cannot delete a deleted process");
                }
            }
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (Io != null) await Io.WaitOutputAsync(TimeSpan.FromSeconds(2));
            Diagnostics.ShimLog.Trace($"delete {Id}: output drained after {clock.ElapsedMilliseconds} ms");
            string? error = null;
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
            MarkDeleted();
            if (error != null) throw TaskErrors.Unknown(error);
        }
        finally
        {
            Operations.Release();
        }
    }
}
