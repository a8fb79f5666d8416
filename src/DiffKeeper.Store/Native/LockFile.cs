using System.Text;

namespace DiffKeeper.Store.Native;

/// <summary>
/// An flock(2) lock file (not a FileStream: the runtime takes its own advisory locks on those). The lock goes with
/// the open file: a process killed without a word releases it, which is what `diffkeeper record` and its private
/// diffkeeperd count on to tell who still uses the daemon.
/// </summary>
public sealed unsafe class LockFile : IDisposable
{
    private int _fd;

    /// <summary>Opens (creates, 0600) <paramref name="path"/>; takes no lock.</summary>
    public LockFile(string path)
    {
        var z = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = z) _fd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180);
        if (_fd < 0) throw new IOException($"cannot open {path}: {Libc.ErrorText(Libc.Errno)}");
        Path = path;
    }

    public string Path { get; }

    /// <summary>Waits for the lock (<see cref="Libc.LOCK_SH"/>, <see cref="Libc.LOCK_EX"/>) or releases it
    /// (<see cref="Libc.LOCK_UN"/>).</summary>
    public void Lock(int op)
    {
        while (Libc.flock(_fd, op) < 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException($"flock {Path} failed: {Libc.ErrorText(Libc.Errno)}");
    }

    /// <summary>Takes the lock if nobody holds a conflicting one (<paramref name="op"/> | LOCK_NB); false if held.</summary>
    public bool TryLock(int op) => Libc.flock(_fd, op | Libc.LOCK_NB) == 0;

    /// <summary>As <see cref="TryLock"/>, trying again until <paramref name="patience"/> has passed.</summary>
    public bool TryLockFor(int op, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (!TryLock(op))
        {
            if (DateTime.UtcNow >= deadline) return false;
            Thread.Sleep(20);
        }
        return true;
    }

    public void Dispose()
    {
        if (_fd >= 0) Libc.close(_fd);
        _fd = -1;
    }
}
