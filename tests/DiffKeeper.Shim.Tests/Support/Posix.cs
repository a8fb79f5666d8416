using System.Runtime.InteropServices;

namespace DiffKeeper.Shim.Tests.Support;

/// <summary>The few libc calls the tests need that .NET does not expose (FIFOs, signals to arbitrary pids).</summary>
internal static partial class Posix
{
    public const int SIGKILL = 9;
    public const int O_RDONLY = 0;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int ESRCH = 3;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    /// <summary>
    /// True while <paramref name="pid"/> exists and is not a zombie: the shim is re-parented away from us, and a
    /// container's PID 1 may be slow (or never) to reap it, so <c>kill -0</c> alone could see a corpse.
    /// </summary>
    public static bool IsAlive(int pid)
    {
        if (kill(pid, 0) != 0) return Marshal.GetLastPInvokeError() != ESRCH;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static void CreateFifo(string path)
    {
        if (mkfifo(path, 0x180 /* 0600 */) != 0)
            throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
    }
}
