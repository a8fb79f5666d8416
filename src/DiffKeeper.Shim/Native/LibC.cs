using System.Runtime.InteropServices;
using Tmds.Linux;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Shim.Native;

/// <summary>
/// The few libc calls the shim needs. Those Tmds.LibC binds go to Tmds.LibC through thin adapters below (string
/// paths, our struct names, and errno handed on so <see cref="LastErrno"/> works for every call). Declared here with
/// source-generated P/Invoke (Native AOT safe, no reflection): the calls Tmds.LibC 0.5 lacks (flock, wait4, prctl,
/// inotify_init1/inotify_add_watch, the posix_spawn family, statfs; checked against its LibC class). The constants
/// are still our own (same values as Tmds.LibC's for x86_64/aarch64).
/// Everything that touches processes goes through here: System.Diagnostics.Process must never be used because
/// the shim owns every wait4 (a second reaper makes the runtime fail-fast).
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    // open(2) flags (x86_64 / aarch64 generic values).
    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100,
        O_TRUNC = 0x200, O_APPEND = 0x400, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;

    public const int F_GETFL = 3, F_SETFL = 4, F_DUPFD_CLOEXEC = 1030;
    public const int WNOHANG = 1;
    public const int PR_SET_CHILD_SUBREAPER = 36;
    public const int SIGKILL = 9, SIGTERM = 15, SIGCHLD = 17;
    public const int EINTR = 4, EAGAIN = 11, ECHILD = 10, ESRCH = 3, EIO = 5, EINVAL = 22, ENOENT = 2,
        EBUSY = 16, EPIPE = 32, EADDRINUSE = 98, ECONNREFUSED = 111, ENXIO = 6, EWOULDBLOCK = 11;
    public const int MNT_DETACH = 2;
    public const int LOCK_EX = 2, LOCK_UN = 8;
    public const short POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
    public const int EFD_CLOEXEC = 0x80000;
    public const int IN_CLOEXEC = 0x80000, IN_MODIFY = 0x2;
    public const ulong TIOCSWINSZ = 0x5414;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08,
        POSIX_SPAWN_SETSID = 0x80;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd { public int Fd; public short Events; public short Revents; }

    [StructLayout(LayoutKind.Sequential)]
    public struct WinSize { public ushort Row, Col, XPixel, YPixel; }









    [LibraryImport(Lib, SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int wait4(int pid, int* status, int options, void* rusage);


    [LibraryImport(Lib, SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);





    [LibraryImport(Lib, SetLastError = true)]
    public static partial int inotify_init1(int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int inotify_add_watch(int fd, string path, uint mask);



    // posix_spawn family. The opaque glibc structs are allocated by the caller with room to spare.
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int posix_spawnp(int* pid, string file, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int posix_spawn_file_actions_addchdir_np(void* actions, string path);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);




    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec { public void* Base; public nuint Len; }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name; public uint NameLen; public IoVec* Iov; public nuint IovLen;
        public void* Control; public nuint ControlLen; public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CmsgHdr { public nuint Len; public int Level; public int Type; }

    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_CMSG_CLOEXEC = 0x40000000;


    // ---- adapters over Tmds.LibC ------------------------------------------------------------------------

    /// <summary>Hands Tmds.LibC's errno on as the last P/Invoke error (read at once, before anything can change it).</summary>
    private static int Ret(int result)
    {
        Marshal.SetLastPInvokeError(result < 0 ? T.errno : 0);
        return result;
    }

    private static nint Ret(ssize_t result)
    {
        nint value = (nint)(long)result;
        Marshal.SetLastPInvokeError(value < 0 ? T.errno : 0);
        return value;
    }

    private static byte[]? Utf8(string? s) => s == null ? null : System.Text.Encoding.UTF8.GetBytes(s + "\0");

    public static int open(string path, int flags, int mode)
    {
        fixed (byte* p = Utf8(path)) return Ret(T.open(p, flags, (mode_t)(uint)mode));
    }

    public static int close(int fd) => Ret(T.close(fd));
    public static nint read(int fd, byte* buf, nint count) => Ret(T.read(fd, buf, (size_t)(ulong)count));
    public static nint write(int fd, byte* buf, nint count) => Ret(T.write(fd, buf, (size_t)(ulong)count));
    public static int dup2(int oldFd, int newFd) => Ret(T.dup2(oldFd, newFd));
    public static int pipe2(int* fds, int flags) => Ret(T.pipe2(fds, flags));
    public static int fcntl(int fd, int cmd, int arg) => Ret(T.fcntl(fd, cmd, arg));
    public static int poll(PollFd* fds, nuint nfds, int timeoutMs) => Ret(T.poll((pollfd*)fds, (ulong_t)(ulong)nfds, timeoutMs));
    public static int kill(int pid, int sig) => Ret(T.kill(pid, sig));
    public static int eventfd(uint initval, int flags) => Ret(T.eventfd(initval, flags));
    public static int ioctl(int fd, ulong request, void* arg) => Ret(T.ioctl(fd, (int)request, arg));
    public static nint recvmsg(int fd, MsgHdr* msg, int flags) => Ret(T.recvmsg(fd, (msghdr*)msg, flags));
    public static int sigemptyset(void* set) => Ret(T.sigemptyset((sigset_t*)set));
    public static int sigfillset(void* set) => Ret(T.sigfillset((sigset_t*)set));

    public static int mount(string? source, string target, string? fsType, ulong flags, string? data)
    {
        fixed (byte* s = Utf8(source), t = Utf8(target), f = Utf8(fsType), d = Utf8(data))
            return Ret(T.mount(s, t, f, (ulong_t)flags, d));
    }

    public static int umount2(string target, int flags)
    {
        fixed (byte* t = Utf8(target)) return Ret(T.umount2(t, flags));
    }

    public static int chdir(string path)
    {
        fixed (byte* p = Utf8(path)) return Ret(T.chdir(p));
    }

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>Throws an <see cref="ErrnoException"/> for a failed call (result &lt; 0).</summary>
    public static int Check(int result, string what)
    {
        if (result < 0) throw new ErrnoException(LastErrno, what);
        return result;
    }

    /// <summary>Turns a wait4 status word into the containerd exit status (128+signal when signalled).</summary>
    public static int DecodeWaitStatus(int status)
    {
        int termSig = status & 0x7f;
        if (termSig == 0) return (status >> 8) & 0xff;      // exited
        return 128 + termSig;                               // killed by a signal
    }
}

/// <summary>A failed system call, with the errno and what was attempted.</summary>
internal sealed class ErrnoException(int errno, string what)
    : IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)}")
{
    public int Errno { get; } = errno;
}

/// <summary>Unix stream sockets by path, with plain syscalls (.NET's Socket unlinks a bound path on Dispose,
/// which the <c>start</c> process must never do: the socket belongs to the server it hands it to).</summary>
internal static unsafe partial class UnixSocket
{
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;

    // Through Tmds.LibC (its imports set the last P/Invoke error, which LibC.LastErrno reads).
    private static int socket(int domain, int type, int protocol) => T.socket(domain, type, protocol);
    private static int bind(int fd, byte* addr, int len) => T.bind(fd, (sockaddr*)addr, (socklen_t)(uint)len);
    private static int connect(int fd, byte* addr, int len) => T.connect(fd, (sockaddr*)addr, (socklen_t)(uint)len);
    private static int listen(int fd, int backlog) => T.listen(fd, backlog);

    private static int chmod(string path, int mode)
    {
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0")) return T.chmod(p, (mode_t)(uint)mode);
    }

    private static int Fill(byte* addr, string path)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) throw new ArgumentException($"socket path too long: {path}");
        new Span<byte>(addr, 110).Clear();
        *(ushort*)addr = AF_UNIX;
        bytes.CopyTo(new Span<byte>(addr + 2, 108));
        return 2 + bytes.Length + 1;
    }

    /// <summary>A bound, listening socket; throws <see cref="ErrnoException"/> (e.g. EADDRINUSE).</summary>
    public static FileDescriptor Listen(string path, int backlog = 128)
    {
        var fd = new FileDescriptor(LibC.Check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
        byte* addr = stackalloc byte[112];
        int len = Fill(addr, path);
        // Owner-only: whoever can connect can run and kill containers.
        if (bind(fd.Value, addr, len) < 0 || chmod(path, 0x180 /* 0600 */) < 0 || listen(fd.Value, backlog) < 0)
        {
            var error = new ErrnoException(LibC.LastErrno, $"listen on {path}");
            fd.Dispose();
            throw error;
        }
        return fd;
    }

    /// <summary>Whether something accepts connections on <paramref name="path"/>.</summary>
    public static bool CanConnect(string path)
    {
        using var fd = new FileDescriptor(LibC.Check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
        byte* addr = stackalloc byte[112];
        int len = Fill(addr, path);
        return connect(fd.Value, addr, len) == 0;
    }
}
