namespace DiffKeeper.Shim.Processes;

/// <summary>
/// Every reason a container's init exit is held back before it is published, in one place. containerd requires
/// TaskStart before the init's TaskExit, and (containerd ≥1.6.3x/1.7.2x/2.0) every exec's TaskExit before the
/// init's; runc's shim also kills leftover processes before publishing. The reaper reports exits whenever they
/// happen, so the init's exit passes three gates in this order:
/// <list type="number">
/// <item>Start is running (<see cref="StartBegins"/>..<see cref="StartEnded"/>): an init can exit before
/// <c>runc start</c> returns, i.e. before TaskStart was published; the exit waits for the Start to end.</item>
/// <item>Leftovers (<c>killLeftovers</c>, only for a container without its own pid namespace): the kernel does not
/// kill the rest with init; <c>runc kill --all</c> runs to completion first, so a client that sees the exit can rely
/// on them being gone. It runs off the caller's (the reaper's) thread: runc itself must be reaped meanwhile.</item>
/// <item>Execs are running (<see cref="ExecStarting"/>..<see cref="ExecEnded"/>): the exit waits for the last
/// exec's exit to be published.</item>
/// </list>
/// Then <c>publish</c> runs, once. An exit of an init deleted before it started (<see cref="Drop"/>: runc delete
/// kills it) is never published.
/// </summary>
internal sealed class ExitHold(Func<Task>? killLeftovers, Action<ProcessExit> publish)
{
    private readonly object _gate = new();
    private int _starts;
    private int _runningExecs;
    private bool _dropped;
    private ProcessExit? _heldForStart;
    private ProcessExit? _heldForExecs;

    /// <summary>A Start of the init begins (before <c>runc start</c>).</summary>
    public void StartBegins()
    {
        lock (_gate) _starts++;
    }

    /// <summary>The Start ended (TaskStart published, or it failed): an exit held meanwhile moves on.</summary>
    public void StartEnded()
    {
        if (EndOne(ref _starts, ref _heldForStart) is { } exit) AfterStart(exit);
    }

    /// <summary>An exec is being started: the init's exit waits for its exit (or its failure to start).</summary>
    public void ExecStarting()
    {
        lock (_gate) _runningExecs++;
    }

    /// <summary>An exec's exit was published, or it failed to start.</summary>
    public void ExecEnded()
    {
        if (EndOne(ref _runningExecs, ref _heldForExecs) is { } exit) Publish(exit);
    }

    /// <summary>One of the things <paramref name="held"/> waits for ended: the exit, if it was the last one.</summary>
    private ProcessExit? EndOne(ref int running, ref ProcessExit? held)
    {
        lock (_gate)
        {
            if (--running > 0) return null;
            var exit = held;
            held = null;
            return exit;
        }
    }

    /// <summary>The init will not be published any more (Delete of a never-started or deleted init).</summary>
    public void Drop()
    {
        lock (_gate)
        {
            _dropped = true;
            _heldForStart = null;
            _heldForExecs = null;
        }
    }

    /// <summary>The reaper saw the init exit.</summary>
    public void InitExited(ProcessExit exit)
    {
        if (!Holds(ref _starts, ref _heldForStart, exit)) AfterStart(exit);
    }

    private void AfterStart(ProcessExit exit)
    {
        if (killLeftovers == null)
        {
            AfterLeftovers(exit);
            return;
        }
        _ = Task.Run(async () =>
        {
            await killLeftovers();
            AfterLeftovers(exit);
        });
    }

    private void AfterLeftovers(ProcessExit exit)
    {
        if (!Holds(ref _runningExecs, ref _heldForExecs, exit)) Publish(exit);
    }

    /// <summary>
    /// True if the exit goes no further now: dropped, or kept in <paramref name="held"/> because
    /// <paramref name="running"/> things still run (the last one's end passes it on, <see cref="EndOne"/>).
    /// </summary>
    private bool Holds(ref int running, ref ProcessExit? held, ProcessExit exit)
    {
        lock (_gate)
        {
            if (_dropped) return true;
            if (running == 0) return false;
            held = exit;
            return true;
        }
    }

    private void Publish(ProcessExit exit)
    {
        lock (_gate)
            if (_dropped) return;
        publish(exit);
    }
}
