using System.Net.Sockets;
using System.Text;

namespace DiffKeeper.Recorder.Native;

/// <summary>systemd's readiness protocol (Type=notify): one datagram to $NOTIFY_SOCKET ("@name" = abstract).</summary>
internal static class SdNotify
{
    public static void Send(string state)
    {
        var target = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(target)) return;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            var ep = new UnixDomainSocketEndPoint(target[0] == '@' ? "\0" + target[1..] : target);
            s.SendTo(Encoding.UTF8.GetBytes(state), ep);
        }
        catch (SocketException) { /* systemd gone: nothing to tell */ }
    }
}
