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
    [Fact]
    public async Task A_handler_learns_when_its_callers_connection_closes_long_after_the_call_returned()
    {
        // What diffkeeperd needs to end a `record` session whose CLI was killed without a word: the call is over,
        // only the connection it came on tells that the client is gone.
        await using var server = new TestServer();
        var closed = new Dictionary<string, TaskCompletionSource>();
        server.Server.Register<StringValue, Empty>("test.Sessions", "Open", StringValue.Parser, (req, ctx) =>
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (closed) closed[req.Value] = tcs;
            ctx.ConnectionClosed.Register(() => tcs.TrySetResult());
            return ValueTask.FromResult(new Empty());
        });
        var leaving = await server.ConnectAsync();
        await using var staying = await server.ConnectAsync();
        // With a deadline: the call's own token is not the connection's, and the call ends well before the close.
        await leaving.CallAsync("test.Sessions", "Open", new StringValue { Value = "leaving" }, Empty.Parser, timeout: TimeSpan.FromSeconds(1));
        await staying.CallAsync("test.Sessions", "Open", new StringValue { Value = "staying" }, Empty.Parser);
        await Task.Delay(1200); // past the first call's deadline
        Assert.False(closed["leaving"].Task.IsCompleted, "the token fired while the client was still connected");

        await leaving.DisposeAsync();

        await closed["leaving"].Task.WaitAsync(Patience);
        Assert.False(closed["staying"].Task.IsCompleted, "another connection's token fired");
        await staying.CallAsync(TestService.Name, "Empty", new Empty(), Empty.Parser);
    }
}
