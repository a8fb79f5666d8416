using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Cli.Record;

/// <summary>
/// Starting and waiting for processes ourselves (posix_spawnp + waitpid) rather than through
/// System.Diagnostics.Process: `record` must exit like a shell (128+N when CMD was killed by signal N, while an exit
/// status of 130 is not a signal), and Process folds both into one ExitCode. The child gets the default disposition of
/// every signal and an empty signal mask (the runtime ignores SIGPIPE, which exec would otherwise pass on), and
/// inherits stdin, stdout and stderr untouched (the runtime opens everything else close-on-exec).
/// </summary>
internal static unsafe partial class Spawn
{
    private const string Lib = "libc";
    private const short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08, POSIX_SPAWN_SETSID = 0x80;
    private const int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_APPEND = 0x400;
    public const int WNOHANG = 1, EINTR = 4, ECHILD = 10, ESRCH = 3;

    [LibraryImport(Lib)] private static partial int posix_spawnattr_init(byte* attr);
    [LibraryImport(Lib)] private static partial int posix_spawnattr_destroy(byte* attr);
    [LibraryImport(Lib)] private static partial int posix_spawnattr_setflags(byte* attr, short flags);
    [LibraryImport(Lib)] private static partial int posix_spawnattr_setsigmask(byte* attr, byte* set);
    [LibraryImport(Lib)] private static partial int posix_spawnattr_setsigdefault(byte* attr, byte* set);
    [LibraryImport(Lib)] private static partial int posix_spawn_file_actions_init(byte* fa);
    [LibraryImport(Lib)] private static partial int posix_spawn_file_actions_destroy(byte* fa);
    [LibraryImport(Lib)] private static partial int posix_spawn_file_actions_addopen(byte* fa, int fd, byte* path, int oflag, uint mode);
    [LibraryImport(Lib)] private static partial int posix_spawn_file_actions_adddup2(byte* fa, int fd, int newfd);
    [LibraryImport(Lib)] private static partial int posix_spawnp(int* pid, byte* file, byte* fileActions, byte* attr, byte** argv, byte** envp);
    [LibraryImport(Lib, SetLastError = true)] private static partial int waitpid(int pid, int* status, int options);
    // Above: what Tmds.LibC 0.5 lacks (the posix_spawn family, waitpid; flock is the store's, for LockFile). The rest is its.
    private static int sigemptyset(byte* set) => T.sigemptyset((sigset_t*)set);
    private static int sigfillset(byte* set) => T.sigfillset((sigset_t*)set);
    private static int sigdelset(byte* set, int sig) => T.sigdelset((sigset_t*)set, sig);
    public static int kill(int pid, int sig) => T.kill(pid, sig);
    public static uint geteuid() => (uint)T.geteuid();
    public static uint getegid() => (uint)T.getegid();

    /// <summary>Starts <paramref name="args"/>[0] (searched in PATH) with the current environment. With
    /// <paramref name="logFile"/>: stdin from /dev/null, stdout and stderr appended to the file, and a session of its
    /// own (a daemon: the terminal's Ctrl-C is not for it). Returns the pid, or throws with the errno's text
    /// (127-style "not found" is <see cref="SpawnException.NotFound"/>).</summary>
    public static int Start(IReadOnlyList<string> args, string? logFile = null)
    {
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}").ToList();
        var strings = new List<nint>();
        byte* Z(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            var p = (byte*)NativeMemory.Alloc((nuint)b.Length + 1);
            b.AsSpan().CopyTo(new Span<byte>(p, b.Length));
            p[b.Length] = 0;
            strings.Add((nint)p);
            return p;
        }
        byte** argv = (byte**)NativeMemory.AllocZeroed((nuint)(args.Count + 1), (nuint)sizeof(nint));
        byte** envp = (byte**)NativeMemory.AllocZeroed((nuint)(env.Count + 1), (nuint)sizeof(nint));
        byte* attr = stackalloc byte[1024];
        byte* fa = stackalloc byte[1024];
        byte* sigs = stackalloc byte[256];
        try
        {
            for (int i = 0; i < args.Count; i++) argv[i] = Z(args[i]);
            for (int i = 0; i < env.Count; i++) envp[i] = Z(env[i]);
            posix_spawnattr_init(attr);
            posix_spawn_file_actions_init(fa);
            short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
            sigemptyset(sigs);
            posix_spawnattr_setsigmask(attr, sigs);
            sigfillset(sigs);
            sigdelset(sigs, 9);  // SIGKILL and SIGSTOP cannot be (re)set
            sigdelset(sigs, 19);
            posix_spawnattr_setsigdefault(attr, sigs);
            if (logFile != null)
            {
                flags |= POSIX_SPAWN_SETSID;
                posix_spawn_file_actions_addopen(fa, 0, Z("/dev/null"), O_RDONLY, 0);
                posix_spawn_file_actions_addopen(fa, 1, Z(logFile), O_WRONLY | O_CREAT | O_APPEND, 0x180);
                posix_spawn_file_actions_adddup2(fa, 1, 2);
            }
            posix_spawnattr_setflags(attr, flags);
            int pid;
            int rc = posix_spawnp(&pid, argv[0], fa, attr, argv, envp);
            posix_spawn_file_actions_destroy(fa);
            posix_spawnattr_destroy(attr);
            if (rc != 0) throw new SpawnException(args[0], rc);
            return pid;
        }
        finally
        {
            foreach (var p in strings) NativeMemory.Free((void*)p);
            NativeMemory.Free(argv);
            NativeMemory.Free(envp);
        }
    }

    /// <summary>Waits for child <paramref name="pid"/>: (exit status as a shell reports it, the killing signal or 0).</summary>
    public static (int Status, int Signal) Wait(int pid)
    {
        int status;
        while (true)
        {
            int r = waitpid(pid, &status, 0);
            if (r == pid) break;
            int e = Marshal.GetLastPInvokeError();
            if (e == EINTR) continue;
            throw new IOException($"waitpid({pid}) failed: errno {e}");
        }
        int sig = status & 0x7f;
        return sig == 0 ? ((status >> 8) & 0xff, 0) : (128 + sig, sig);
    }

    /// <summary>Reaps <paramref name="pid"/> if it is our exited child; true when it is gone (or not our child).</summary>
    public static bool TryReap(int pid)
    {
        int status;
        int r = waitpid(pid, &status, WNOHANG);
        return r == pid || (r < 0 && Marshal.GetLastPInvokeError() == ECHILD);
    }
}

internal sealed class SpawnException(string file, int errno) : Exception($"{file}: {(errno == 2 ? "command not found" : errno == 13 ? "permission denied" : "cannot run it (errno " + errno + ")")}")
{
    public int Errno { get; } = errno;
    public bool NotFound => Errno == 2;
}
