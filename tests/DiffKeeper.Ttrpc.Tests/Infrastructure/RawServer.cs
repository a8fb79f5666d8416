using System.Net.Sockets;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>A listening socket that hands the test the accepted connection, to play a server by hand.</summary>
public sealed class RawServer : IDisposable
{
    private readonly Socket _listener;
    private readonly string _directory;

    public RawServer()
    {
        _directory = Directory.CreateTempSubdirectory("dk-ttrpc-raw-").FullName;
        SocketPath = Path.Combine(_directory, "s.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(4);
    }

    public string SocketPath { get; }

    public async Task<Socket> AcceptAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await _listener.AcceptAsync(limit.Token);
    }

    public void Dispose()
    {
        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
