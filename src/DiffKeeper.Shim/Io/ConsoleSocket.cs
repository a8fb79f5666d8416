using System.Net.Sockets;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Io;

/// <summary>
/// The <c>--console-socket</c> runc sends the pty master to: a temporary listening unix socket; runc connects
/// once and passes the master with SCM_RIGHTS (the data part carries the pty name, which we do not need).
/// </summary>
internal sealed class ConsoleSocket : IDisposable
{
    private readonly DirectoryInfo _directory;
    private readonly Socket _listener;
    private readonly Task<Socket> _accept;

    private ConsoleSocket(DirectoryInfo directory, Socket listener)
    {
        _directory = directory;
        _listener = listener;
        _accept = listener.AcceptAsync();
    }

    public string Path => System.IO.Path.Combine(_directory.FullName, "pty.sock");

    public static ConsoleSocket Create()
    {
        var dir = Directory.CreateTempSubdirectory("pty");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(System.IO.Path.Combine(dir.FullName, "pty.sock")));
            listener.Listen(1);
            return new ConsoleSocket(dir, listener);
        }
        catch
        {
            listener.Dispose();
            dir.Delete(true);
            throw;
        }
    }

    /// <summary>Accepts runc's connection and receives the pty master descriptor.</summary>
    public unsafe FileDescriptor ReceiveMaster(TimeSpan timeout)
    {
        if (!_accept.Wait(timeout)) throw new TimeoutException("runc did not connect to the console socket");
        using var connection = _accept.Result;
        int fd = (int)connection.Handle;

        var poll = new LibC.PollFd { Fd = fd, Events = LibC.POLLIN };
        if (LibC.poll(&poll, 1, (int)timeout.TotalMilliseconds) <= 0)
            throw new TimeoutException("runc sent no pty master");

        byte* data = stackalloc byte[4096];
        byte* control = stackalloc byte[64];
        var iov = new LibC.IoVec { Base = data, Len = 4096 };
        var msg = new LibC.MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 64 };
        nint n = LibC.recvmsg(fd, &msg, LibC.MSG_CMSG_CLOEXEC);
        if (n < 0) throw new ErrnoException(LibC.LastErrno, "recvmsg(console socket)");
        if (msg.ControlLen < (nuint)sizeof(LibC.CmsgHdr) + sizeof(int))
            throw new IOException("console socket: no descriptor received");
        var header = (LibC.CmsgHdr*)control;
        if (header->Level != LibC.SOL_SOCKET || header->Type != LibC.SCM_RIGHTS)
            throw new IOException("console socket: unexpected control message");
        int master = *(int*)(control + sizeof(LibC.CmsgHdr));
        return new FileDescriptor(master);
    }

    public void Dispose()
    {
        _listener.Dispose();
        try { _directory.Delete(true); } catch (IOException) { }
    }
}
