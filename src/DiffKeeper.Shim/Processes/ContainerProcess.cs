using DiffKeeper.Shim.Io;

namespace DiffKeeper.Shim.Processes;

/// <summary>A process as State, Delete and Wait report it: plain values, mapped to replies by TaskService.</summary>
internal readonly record struct ProcessSnapshot(string Id, int Pid, ProcessState State, StdioPaths Stdio, int ExitStatus,
    DateTime? ExitedAt);

/// <summary>
/// What init and exec processes share: identity, stdio, state and the exit a Wait is released by.
/// Every state change goes through <see cref="ProcessMoves"/>: <see cref="RunAsync"/> for the client's operations
/// (one at a time per process, so runc calls never overlap), <see cref="Check"/> for the ones that change no state,
/// <see cref="MarkExited"/> for the exit (never waits for a running operation, so an exit can always be recorded).
/// </summary>
internal abstract class ContainerProcess(string id, StdioPaths stdio)
{
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _gate = new();
    private readonly SemaphoreSlim _operations = new(1, 1);
    private bool _stdinCloseRequested;

    protected abstract ProcessKind Kind { get; }

    /// <summary>The container id for init, the exec id for an exec.</summary>
    public string Id { get; } = id;
    public StdioPaths Stdio { get; } = stdio;
    public ProcessIo? Io { get; private set; }
    public int Pid { get; protected set; }
    public ProcessState State { get { lock (_gate) return _state; } }
    private ProcessState _state = ProcessState.Created;
    public int ExitStatus { get; private set; }
    public DateTime? ExitedAt { get; private set; }

    /// <summary>The state State reports: an exec shows its container's pause while it runs.</summary>
    public virtual ProcessState ReportedState => State;

    /// <summary>Completes when the process exited (Wait).</summary>
    public Task Exited => _exited.Task;

    public ProcessSnapshot Snapshot() => new(Id, Pid, ReportedState, Stdio, ExitStatus, ExitedAt);

    /// <summary>Throws the table's refusal if <paramref name="operation"/> is not legal now; for moves that keep the state.</summary>
    protected void Check(ProcessOperation operation)
    {
        lock (_gate) ProcessMoves.Begin(Kind, operation, _state);
    }

    /// <summary>
    /// Runs a client operation: waits for the one before it, checks the table (under the lock, so
    /// <paramref name="begin"/> sees the state it was allowed in), enters the row's During state, runs
    /// <paramref name="work"/>, then enters To, or goes back when the work failed. An exit recorded meanwhile wins.
    /// </summary>
    protected async Task RunAsync(ProcessOperation operation, Func<Task> work, Action<ProcessState>? begin = null)
    {
        await _operations.WaitAsync();
        try
        {
            ProcessState from;
            ProcessMoves.Move move;
            lock (_gate)
            {
                from = _state;
                move = ProcessMoves.Begin(Kind, operation, from);
                if (move.During is { } during) _state = during;
                begin?.Invoke(from);
            }
            var during2 = move.During ?? from;
            try
            {
                await work();
            }
            catch
            {
                lock (_gate) if (_state == during2) _state = from;
                throw;
            }
            lock (_gate) if (_state == during2 && move.To is { } to) _state = to;
            if (move.To == ProcessState.Deleted) _exited.TrySetResult();
        }
        finally
        {
            _operations.Release();
        }
    }

    /// <summary>Records the exit: Stopped, status and time; releases waiters. False if it was already recorded.</summary>
    protected bool MarkExited(ProcessExit exit)
    {
        lock (_gate)
        {
            var move = ProcessMoves.Find(Kind, ProcessOperation.Exit, _state);
            if (move.To is not { } to) return false;
            _state = to;
            ExitStatus = exit.Status;
            ExitedAt = exit.ExitedAt;
        }
        _exited.TrySetResult();
        return true;
    }

    /// <summary>Sets the pid and the state a successful Start leads to, at once (before the operation ends).</summary>
    protected void MarkStarted(int pid)
    {
        lock (_gate)
        {
            Pid = pid;
            if (ProcessMoves.Find(Kind, ProcessOperation.Start, _state).To is { } to) _state = to;
        }
    }

    public void Resize(uint width, uint height)
    {
        Check(ProcessOperation.Resize);
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
        lock (_gate)
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
        lock (_gate)
        {
            Io = io;
            close = _stdinCloseRequested;
        }
        if (close) io?.CloseStdin();
    }
}
