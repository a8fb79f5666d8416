using DiffKeeper.Store.Native;

namespace DiffKeeper.Recorder.Lifecycle;

/// <summary>
/// A diffkeeperd that `diffkeeper record` started for its store (--private DIR), and the protocol it shares with
/// the CLI's RecorderConnection in DIR: every `record` run holds users.lock shared while it records; starting and
/// stopping the daemon happen under start.lock. Normally the last run to end stops the daemon. A run killed without
/// a word (SIGKILL, a CI job's timeout) cannot: its locks go with its death, and its connection closes. Then the
/// daemon checks by the same locks whether anyone still uses it, and if nobody does it retires: it holds both locks
/// until it has exited (the store closed, the socket gone), so a `record` that comes meanwhile waits on users.lock
/// and then starts a daemon of its own, never one that would find the store still locked.
/// </summary>
internal sealed class PrivateDaemon(string dir, Action<string> log)
{
    private readonly object _gate = new();
    private LockFile? _start, _users; // held from retirement until the process exits
    public string Directory { get; } = dir;

    /// <summary>True (and the locks held) when no `record` run uses the daemon any more. Never waits: a run that holds
    /// start.lock is starting or stopping this daemon itself, and the one stopping it needs us to answer.</summary>
    public bool TryRetire()
    {
        lock (_gate)
        {
            if (_users != null) return true;
            LockFile? start = null, users = null;
            try
            {
                start = new LockFile(Path.Combine(Directory, "start.lock"));
                if (!start.TryLock(Libc.LOCK_EX)) return false;
                users = new LockFile(Path.Combine(Directory, "users.lock"));
                if (!users.TryLock(Libc.LOCK_EX)) return false;
                // The pid file says a daemon runs here; a run that comes now must not stop a pid that is gone.
                try { File.Delete(Path.Combine(Directory, "daemon.pid")); } catch (IOException) { }
                (_start, _users) = (start, users);
                start = users = null;
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log($"private daemon: cannot check who uses it in {Directory}: {e.Message}; staying");
                return false;
            }
            finally
            {
                users?.Dispose();
                start?.Dispose();
            }
        }
    }
}
