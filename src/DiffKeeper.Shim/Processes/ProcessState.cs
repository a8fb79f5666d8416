namespace DiffKeeper.Shim.Processes;

/// <summary>The life of a container process, as the runc shim's state machines define it.</summary>
internal enum ProcessState { Created, Running, Pausing, Paused, Stopped, Deleted }

internal enum ProcessKind { Init, Exec }

/// <summary>
/// What a client can ask of a process. <see cref="AddExec"/> and <see cref="StartExec"/> are judged on the init's
/// state (a new exec needs a live container); <see cref="Exit"/> is the reaper's, never refused.
/// </summary>
internal enum ProcessOperation { Start, Pause, Resume, Kill, Update, Resize, Delete, AddExec, StartExec, Exit }

/// <summary>
/// Every legal move of an init or exec process, and what containerd is told for every illegal one, in one table.
/// <para>
/// Why a table (runwasi's task_state.rs) and not one class per state (containerd's init_state.go/exec_state.go):
/// there are six states and ten operations, and what a reader needs is the whole grid: which pairs are legal, which
/// state they lead to, and the refusal texts containerd's clients match on. One class per state spreads that grid
/// over six files and writes each shared refusal once per class; here each row is one line, the refusals exist once,
/// and the operations' work (runc calls, I/O) stays in one method per operation in the process classes, which ask
/// this table first (<see cref="Begin"/>) and apply the outcome after (<see cref="Move.To"/>).
/// </para>
/// </summary>
internal static class ProcessMoves
{
    /// <summary>
    /// One row. A row with <see cref="Refusal"/> refuses; otherwise the operation is legal: the process is in
    /// <see cref="During"/> while it runs (null: unchanged) and in <see cref="To"/> after it succeeded (null: unchanged).
    /// A failed operation returns the process to where it was.
    /// </summary>
    internal sealed record Move(ProcessOperation Operation, ProcessKind? Only, ProcessState[] From,
        ProcessState? During = null, ProcessState? To = null, Refusal? Refusal = null);

    private const ProcessState Created = ProcessState.Created, Running = ProcessState.Running,
        Pausing = ProcessState.Pausing, Paused = ProcessState.Paused, Stopped = ProcessState.Stopped,
        Deleted = ProcessState.Deleted;
    private const ProcessKind Init = ProcessKind.Init, Exec = ProcessKind.Exec;

    /// <summary>A refusal: the error class and the text containerd shows (the exception is made only when thrown).</summary>
    internal sealed record Refusal(ErrorKind Kind, string Message);

    private static Refusal Unknown(string message) => new(ErrorKind.Unknown, message);
    private static Refusal NotFound(string message) => new(ErrorKind.NotFound, message);

    private static readonly Refusal StartRunning = Unknown("cannot start a running process");
    private static readonly Refusal StartStopped = Unknown("cannot start a stopped process");
    private static readonly Refusal StartDeleted = Unknown("cannot start a deleted process");
    private static readonly Refusal DeleteRunning = Unknown("cannot delete a running process");
    private static readonly Refusal DeleteDeleted = NotFound("cannot delete a deleted process");
    private static readonly Refusal KillDeleted = NotFound("cannot kill a deleted process");

    // An operation not listed for a (kind, state) pair is legal and changes nothing (Kill of a running init, …).
    private static readonly Move[] Table =
    [
        //  operation                   kind  from                                  legal: during → to, or refusal
        new(ProcessOperation.Start,     null, [Created],                            To: Running),
        new(ProcessOperation.Start,     null, [Running, Pausing],                   Refusal: StartRunning),
        new(ProcessOperation.Start,     null, [Paused],                             Refusal: Unknown("cannot start a paused process")),
        new(ProcessOperation.Start,     null, [Stopped],                            Refusal: StartStopped),
        new(ProcessOperation.Start,     null, [Deleted],                            Refusal: StartDeleted),

        new(ProcessOperation.Pause,     Init, [Running],                            During: Pausing, To: Paused),
        new(ProcessOperation.Pause,     Init, [Created],                            Refusal: Unknown("cannot pause task in created state")),
        new(ProcessOperation.Pause,     Init, [Pausing, Paused],                    Refusal: Unknown("cannot pause a paused container")),
        new(ProcessOperation.Pause,     Init, [Stopped],                            Refusal: Unknown("cannot pause a stopped container")),
        new(ProcessOperation.Pause,     Init, [Deleted],                            Refusal: Unknown("cannot pause a deleted process")),

        new(ProcessOperation.Resume,    Init, [Paused],                             To: Running),
        new(ProcessOperation.Resume,    Init, [Created],                            Refusal: Unknown("cannot resume task in created state")),
        new(ProcessOperation.Resume,    Init, [Running, Pausing],                   Refusal: Unknown("cannot resume a running process")),
        new(ProcessOperation.Resume,    Init, [Stopped],                            Refusal: Unknown("cannot resume a stopped container")),
        new(ProcessOperation.Resume,    Init, [Deleted],                            Refusal: Unknown("cannot resume a deleted process")),

        // runc kill judges a created or stopped init itself (TaskErrors.FromKillError); an exec is signalled directly.
        new(ProcessOperation.Kill,      Init, [Deleted],                            Refusal: KillDeleted),
        new(ProcessOperation.Kill,      Exec, [Created],                            Refusal: new(ErrorKind.FailedPrecondition, "process not created")),
        new(ProcessOperation.Kill,      Exec, [Stopped],                            Refusal: NotFound("process already finished")),
        new(ProcessOperation.Kill,      Exec, [Deleted],                            Refusal: KillDeleted),

        new(ProcessOperation.Update,    Init, [Stopped],                            Refusal: Unknown("cannot update a stopped container")),
        new(ProcessOperation.Update,    Init, [Deleted],                            Refusal: Unknown("cannot update a deleted process")),

        new(ProcessOperation.Resize,    Exec, [Stopped],                            Refusal: Unknown("cannot resize a stopped container")),
        new(ProcessOperation.Resize,    null, [Deleted],                            Refusal: Unknown("cannot resize a deleted process")),

        new(ProcessOperation.Delete,    null, [Created, Stopped],                   To: Deleted),
        new(ProcessOperation.Delete,    null, [Running, Pausing],                   Refusal: DeleteRunning),
        new(ProcessOperation.Delete,    null, [Paused],                             Refusal: Unknown("cannot delete a paused process")),
        new(ProcessOperation.Delete,    null, [Deleted],                            Refusal: DeleteDeleted),

        new(ProcessOperation.AddExec,   Init, [Pausing, Paused],                    Refusal: Unknown("cannot exec in a paused state")),
        new(ProcessOperation.AddExec,   Init, [Stopped],                            Refusal: Unknown("cannot exec in a stopped state")),
        new(ProcessOperation.AddExec,   Init, [Deleted],                            Refusal: Unknown("cannot exec in a deleted state")),
        new(ProcessOperation.StartExec, Init, [Stopped, Deleted],                   Refusal: Unknown("cannot start an exec in a stopped container")),

        // The exit is a fact, not a request: it ends any live state; a second report of it changes nothing.
        new(ProcessOperation.Exit,      null, [Created, Running, Pausing, Paused],  To: Stopped),
    ];

    private static readonly Move Unchanged = new(ProcessOperation.Exit, null, []);

    /// <summary>The table's rows, for the test that no (kind, operation, state) is claimed by two of them.</summary>
    internal static IReadOnlyList<Move> Rows => Table;

    /// <summary>The row for this operation on a process of this kind in this state (a no-change row if none).</summary>
    public static Move Find(ProcessKind kind, ProcessOperation operation, ProcessState state)
    {
        foreach (var move in Table)
        {
            if (move.Operation != operation || (move.Only != null && move.Only != kind)) continue;
            foreach (var from in move.From)
                if (from == state) return move;
        }
        return Unchanged;
    }

    /// <summary>The row, or its refusal thrown as a <see cref="ProcessError"/>.</summary>
    public static Move Begin(ProcessKind kind, ProcessOperation operation, ProcessState state)
    {
        var move = Find(kind, operation, state);
        if (move.Refusal is { } refusal) throw new ProcessError(refusal.Kind, refusal.Message);
        return move;
    }
}
