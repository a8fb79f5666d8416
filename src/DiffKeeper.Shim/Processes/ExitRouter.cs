namespace DiffKeeper.Shim.Processes;

/// <summary>
/// Hands exits of container processes to whoever owns that pid. A process can exit before its pid is known
/// (runc exec returns after the process may already be gone), so exits of unknown pids are kept (bounded) and
/// delivered when the pid is claimed.
/// </summary>
internal sealed class ExitRouter
{
    private const int MaxUnclaimed = 1024;
    // A legitimate early exit is claimed within the runc call that revealed its pid (seconds at most); an older
    // one belongs to an earlier process that had the same pid number.
    private static readonly TimeSpan MaxEarlyExitAge = TimeSpan.FromSeconds(30);
    private readonly object _gate = new();
    private readonly Dictionary<int, Action<ProcessExit>> _owners = new();
    private readonly Dictionary<int, ProcessExit> _unclaimed = new();
    private readonly Queue<int> _unclaimedOrder = new();

    public void Dispatch(ProcessExit exit)
    {
        Action<ProcessExit>? owner;
        lock (_gate)
        {
            if (!_owners.Remove(exit.Pid, out owner))
            {
                _unclaimed[exit.Pid] = exit;
                _unclaimedOrder.Enqueue(exit.Pid);
                while (_unclaimedOrder.Count > MaxUnclaimed) _unclaimed.Remove(_unclaimedOrder.Dequeue());
            }
        }
        owner?.Invoke(exit);
    }

    /// <summary>Routes the exit of <paramref name="pid"/> to <paramref name="owner"/>; at once if it already happened.</summary>
    public void Claim(int pid, Action<ProcessExit> owner)
    {
        ProcessExit early;
        lock (_gate)
        {
            if (!_unclaimed.Remove(pid, out early) || DateTime.UtcNow - early.ExitedAt > MaxEarlyExitAge)
            {
                _owners[pid] = owner;
                return;
            }
        }
        owner(early);
    }

    public void Release(int pid)
    {
        lock (_gate) _owners.Remove(pid);
    }
}
