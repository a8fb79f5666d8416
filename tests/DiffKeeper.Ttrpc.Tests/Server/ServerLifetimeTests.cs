using System.Net.Sockets;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Server;

public class ServerLifetimeTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ServeAsync_ends_when_the_listener_is_closed_and_open_connections_keep_working()
    {
        var directory = Directory.CreateTempSubdirectory("dk-ttrpc-life-").FullName;
        try
        {
            var path = Path.Combine(directory, "s.sock");
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(4);
            await using var server = new TtrpcServer();
            new TestService().RegisterOn(server);
            var serving = server.ServeAsync(listener, CancellationToken.None);
            await using var client = await TtrpcClient.ConnectAsync(path);
            await client.CallAsync(TestService.Name, "Empty", new Empty(), Empty.Parser); // accepted, not just queued

            listener.Dispose();

            await serving.WaitAsync(Patience);
            Assert.Equal("still", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "still" }, StringValue.Parser)).Value);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Disposing_the_server_closes_connections_and_counts_them_down()
    {
        var server = new TestServer();
        await using var one = await server.ConnectAsync();
        await using var two = await server.ConnectAsync();
        await one.CallAsync(TestService.Name, "Empty", new Empty(), Empty.Parser);
        await two.CallAsync(TestService.Name, "Empty", new Empty(), Empty.Parser);
        Assert.Equal(2, server.Server.OpenConnections);
        var counts = new List<int>();
        server.Server.ConnectionClosed += open => { lock (counts) counts.Add(open); };

        await server.DisposeAsync();

        Assert.Equal(0, server.Server.OpenConnections);
        lock (counts) Assert.Equal([0, 1], counts.Order());
        var deadline = DateTime.UtcNow + Patience;
        while ((one.IsConnected || two.IsConnected) && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.False(one.IsConnected);
        Assert.False(two.IsConnected);
    }
}
