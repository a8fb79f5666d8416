using System.Buffers.Binary;
using System.Net.Sockets;
using Tmds.Linux;

namespace DiffKeeper.Ttrpc.Server;

/// <summary>
/// The connecting process's credentials as the kernel recorded them at connect(2) (SO_PEERCRED), and the
/// same-user rule containerd's shims apply (ttrpc.UnixSocketRequireSameUser): effective uid and gid must match ours.
/// </summary>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    public static PeerCredentials Of(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (length < 12) throw new SocketException((int)SocketError.ProtocolNotSupported);
        return new PeerCredentials(
            BinaryPrimitives.ReadInt32LittleEndian(ucred),   // Linux/x86-64 and arm64: native = little endian
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]));
    }

    public bool IsSameUserAsThisProcess() => Uid == LibC.geteuid() && Gid == LibC.getegid();
}
