using System.Net.Sockets;

namespace DiffKeeper.Ttrpc.Client;

/// <summary>
/// Turns a containerd-style address into a unix endpoint. containerd treats an address without "unix://" as an
/// abstract socket name; we also accept a bare absolute path, which is never meant as an abstract name in practice.
/// </summary>
internal static class UnixSocketAddress
{
    private const string Scheme = "unix://";

    public static UnixDomainSocketEndPoint Parse(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        if (address.StartsWith(Scheme, StringComparison.Ordinal))
        {
            var path = address[Scheme.Length..];
            if (path.Length == 0) throw new ArgumentException($"no socket path in '{address}'", nameof(address));
            return new UnixDomainSocketEndPoint(path);
        }
        if (address[0] == '/') return new UnixDomainSocketEndPoint(address);
        // Abstract namespace: the kernel name starts with a NUL byte. Go spells it "@name"; accept that too.
        if (address[0] == '\0') return new UnixDomainSocketEndPoint(address);
        return new UnixDomainSocketEndPoint("\0" + (address[0] == '@' ? address[1..] : address));
    }
}
