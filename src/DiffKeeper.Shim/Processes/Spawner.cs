using System.Collections;
using System.Runtime.InteropServices;
using System.Text;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Processes;

/// <summary>What to launch: argv[0] is looked up in PATH; Fds[i] becomes descriptor i in the child (0..n-1).</summary>
internal sealed class SpawnRequest
{
    public required string File { get; init; }
    public required IReadOnlyList<string> Args { get; init; }
    /// <summary>Descriptors for the child's 0, 1, 2, 3, …; null entries get /dev/null.</summary>
    public required IReadOnlyList<int?> Fds { get; init; }
    public string? WorkingDirectory { get; init; }
    public bool NewSession { get; init; }
    /// <summary>Extra variables; a null value removes the variable from the inherited environment.</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }
}

/// <summary>
/// Launches processes with posix_spawn (glibc uses clone(CLONE_VFORK): no managed code runs in the child).
/// Signal mask and dispositions are reset because .NET ignores SIGPIPE and ignored signals survive exec.
/// </summary>
internal static unsafe class Spawner
{
    private const int OpaqueSize = 1024; // > sizeof(posix_spawn_file_actions_t)=80, posix_spawnattr_t=336, sigset_t=128

    /// <summary>Spawns and registers with the reaper; returns the pid and a task for its exit.</summary>
    public static Task<ProcessExit> Spawn(Reaper reaper, SpawnRequest request, out int pid)
    {
        // Move every source descriptor above the target range first so dup2 in the child cannot clobber a
        // source that a later dup2 still needs.
        var high = new List<FileDescriptor>(request.Fds.Count);
        FileDescriptor? devNull = null;
        try
        {
            foreach (var fd in request.Fds)
            {
                int src = fd ?? (devNull ??= FileDescriptor.OpenDevNull()).Value;
                int dup = LibC.fcntl(src, LibC.F_DUPFD_CLOEXEC, 64);
                if (dup < 0) throw new ErrnoException(LibC.LastErrno, "fcntl(F_DUPFD_CLOEXEC)");
                high.Add(new FileDescriptor(dup));
            }
            var env = BuildEnvironment(request.Environment);
            return reaper.Launch(() => SpawnNow(request, high, env), out pid);
        }
        finally
        {
            foreach (var fd in high) fd.Dispose();
            devNull?.Dispose();
        }
    }

    private static int SpawnNow(SpawnRequest request, List<FileDescriptor> fds, List<string> env)
    {
        void* actions = NativeMemory.AllocZeroed(OpaqueSize);
        void* attr = NativeMemory.AllocZeroed(OpaqueSize);
        void* sigset = NativeMemory.AllocZeroed(OpaqueSize);
        byte** argv = ToNativeArray(request.Args);
        byte** envp = ToNativeArray(env);
        try
        {
            LibC.posix_spawn_file_actions_init(actions);
            LibC.posix_spawnattr_init(attr);
            for (int i = 0; i < fds.Count; i++)
                LibC.posix_spawn_file_actions_adddup2(actions, fds[i].Value, i);
            if (request.WorkingDirectory != null)
                LibC.posix_spawn_file_actions_addchdir_np(actions, request.WorkingDirectory);

            short flags = LibC.POSIX_SPAWN_SETSIGMASK | LibC.POSIX_SPAWN_SETSIGDEF;
            if (request.NewSession) flags |= LibC.POSIX_SPAWN_SETSID;
            LibC.posix_spawnattr_setflags(attr, flags);
            LibC.sigemptyset(sigset);
            LibC.posix_spawnattr_setsigmask(attr, sigset);
            LibC.sigfillset(sigset);
            LibC.posix_spawnattr_setsigdefault(attr, sigset);

            int pid;
            int rc = LibC.posix_spawnp(&pid, request.File, actions, attr, argv, envp);
            if (rc != 0) throw new ErrnoException(rc, $"spawn {request.File}");
            return pid;
        }
        finally
        {
            LibC.posix_spawn_file_actions_destroy(actions);
            LibC.posix_spawnattr_destroy(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigset);
            FreeNativeArray(argv);
            FreeNativeArray(envp);
        }
    }

    private static List<string> BuildEnvironment(IReadOnlyDictionary<string, string?>? overrides)
    {
        var vars = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
            vars[(string)entry.Key] = (string?)entry.Value ?? "";
        // runc must not talk to systemd's notify socket of whoever started containerd.
        vars.Remove("NOTIFY_SOCKET");
        if (overrides != null)
            foreach (var (key, value) in overrides)
                if (value == null) vars.Remove(key); else vars[key] = value;
        var list = new List<string>(vars.Count);
        foreach (var (key, value) in vars) list.Add($"{key}={value}");
        return list;
    }

    private static byte** ToNativeArray(IReadOnlyList<string> strings)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(strings.Count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < strings.Count; i++)
        {
            int len = Encoding.UTF8.GetByteCount(strings[i]);
            var p = (byte*)NativeMemory.Alloc((nuint)len + 1);
            Encoding.UTF8.GetBytes(strings[i], new Span<byte>(p, len));
            p[len] = 0;
            array[i] = p;
        }
        return array;
    }

    private static void FreeNativeArray(byte** array)
    {
        for (int i = 0; array[i] != null; i++) NativeMemory.Free(array[i]);
        NativeMemory.Free(array);
    }
}
