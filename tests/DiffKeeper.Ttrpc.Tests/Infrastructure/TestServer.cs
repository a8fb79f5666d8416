using DiffKeeper.TestSupport.Ttrpc;
using System.Net.Sockets;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>A real TtrpcServer listening on a unix socket in its own temp directory, removed on dispose.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Task _serving;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _directory;

    public TestServer(TtrpcServerOptions? options = null, string? abstractName = null)
    {
        _directory = Directory.CreateTempSubdirectory("dk-ttrpc-").FullName;
        SocketPath = Path.Combine(_directory, "s.sock");
        Server = new TtrpcServer(options ?? new TtrpcServerOptions { ShutdownGracePeriod = TimeSpan.FromMilliseconds(200) });
        Service.RegisterOn(Server);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(abstractName is null ? SocketPath : "\0" + abstractName));
        _listener.Listen(64);
        _serving = Server.ServeAsync(_listener, _stop.Token);
    }

    public TtrpcServer Server { get; }
    public TestService Service { get; } = new();
    public string SocketPath { get; }
    public string Address => "unix://" + SocketPath;

    public Task<TtrpcClient> ConnectAsync() => TtrpcClient.ConnectAsync(Address);

    public async Task<RawConnection> ConnectRawAsync() => await RawConnection.OpenAsync(SocketPath);

    public async ValueTask DisposeAsync()
    {
        try
        {
            _stop.Cancel();
            await _serving;
            await Server.DisposeAsync();
        }
        finally
        {
            _listener.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
