using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Service;
using DiffKeeper.Shim.Protos.Task;
using Status = DiffKeeper.Shim.Protos.TaskTypes.Status;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// What init and exec processes share: identity, stdio, state and the exit a Wait is released by.
/// State changes happen under <see cref="Gate"/>; runc-driving operations are serialized by <see cref="Operations"/>
/// (never held by exit handling, so an exit can always be recorded).
/// </summary>
internal abstract class ContainerProcess(string id, StdioPaths stdio)
{
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    protected readonly object Gate = new();
    protected readonly SemaphoreSlim Operations = new(1, 1);
    private bool _stdinCloseRequested;

    /// <summary>The container id for init, the exec id for an exec.</summary>
    public string Id { get; } = id;
    public StdioPaths Stdio { get; } = stdio;
    public ProcessIo? Io { get; protected set; }
    public int Pid { get; protected set; }
    public ProcessState State { get; protected set; } = ProcessState.Created;
    public int ExitStatus { get; private set; }
    public DateTime? ExitedAt { get; private set; }

    /// <summary>Completes when the process exited (Wait).</summary>
    public Task Exited => _exited.Task;

    /// <summary>Records the exit: Stopped, status and time; releases waiters. False if it was already recorded.</summary>
    protected bool MarkExited(ProcessExit exit)
    {
        lock (Gate)
        {
            if (State is ProcessState.Stopped or ProcessState.Deleted) return false;
            State = ProcessState.Stopped;
            ExitStatus = exit.Status;
            ExitedAt = exit.ExitedAt;
        }
        _exited.TrySetResult();
        return true;
    }

    protected void MarkDeleted()
    {
        lock (Gate) State = ProcessState.Deleted;
        _exited.TrySetResult();
    }

    public abstract Status ReportedStatus { get; }

    public static Status ToStatus(ProcessState state) => state switch
    {
        ProcessState.Created => Status.Created,
        ProcessState.Running => Status.Running,
        ProcessState.Pausing => Status.Pausing,
        ProcessState.Paused => Status.Paused,
        ProcessState.Stopped => Status.Stopped,
        _ => Status.Unknown,
    };

    public StateResponse ToStateResponse(string bundle) => new()
    {
        Id = Id,
        Bundle = bundle,
        Pid = (uint)Pid,
        Status = ReportedStatus,
        Stdin = Stdio.Stdin,
        Stdout = Stdio.Stdout,
        Stderr = Stdio.Stderr,
        Terminal = Stdio.Terminal,
        ExitStatus = (uint)ExitStatus,
        ExitedAt = ProtoTime.From(ExitedAt),
    };

    public DeleteResponse ToDeleteResponse() => new()
    {
        Pid = (uint)Pid, ExitStatus = (uint)ExitStatus, ExitedAt = ProtoTime.From(ExitedAt),
    };

    public void Resize(uint width, uint height)
    {
        lock (Gate)
        {
            if (State == ProcessState.Deleted) throw TaskErrors.Unknown("cannot resize a deleted process");
        }
        try { Io?.Resize(width, height); }
        catch (IOException e) { throw TaskErrors.Unknown(e.Message); }
    }

    /// <summary>
    /// CloseIO. It can overtake Start's I/O setup (the client's stdin copy ends as soon as our FIFO reader exists,
    /// before runc exec returns), so it is remembered and applied when the I/O is attached.
    /// </summary>
    public void CloseStdin()
    {
        ProcessIo? io;
        lock (Gate)
        {
            _stdinCloseRequested = true;
            io = Io;
        }
        io?.CloseStdin();
    }

    /// <summary>Makes <paramref name="io"/> this process's I/O, applying an earlier CloseIO.</summary>
    protected void AttachIo(ProcessIo? io)
    {
        bool close;
        lock (Gate)
        {
            Io = io;
            close = _stdinCloseRequested;
        }
        if (close) io?.CloseStdin();
    }
}
