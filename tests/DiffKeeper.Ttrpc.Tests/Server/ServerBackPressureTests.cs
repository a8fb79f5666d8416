using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Server;

/// <summary>
/// A connection may have only MaxConcurrentCallsPerConnection calls in flight: past that the server stops reading
/// from it (the socket pushes back on the peer), so a peer that floods requests cannot grow our memory.
/// </summary>
public class ServerBackPressureTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_call_beyond_the_limit_waits_until_a_slot_frees_and_other_connections_are_not_affected()
    {
        await using var server = new TestServer(new TtrpcServerOptions { MaxConcurrentCallsPerConnection = 2 });
        await using var client = await server.ConnectAsync();
        var first = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "a" }, StringValue.Parser);
        var second = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "b" }, StringValue.Parser);
        var third = client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "c" }, StringValue.Parser);

        // Two calls hold both slots: the third is not even read yet.
        await Task.Delay(300);
        Assert.False(third.IsCompleted, "the third call was served although two calls held every slot");

        // Another connection has slots of its own.
        await using var other = await server.ConnectAsync();
        var echo = await other.CallAsync(TestService.Name, "Echo", new StringValue { Value = "x" }, StringValue.Parser).WaitAsync(Patience);
        Assert.Equal("x", echo.Value);

        server.Service.Open("a");
        Assert.Equal("a", (await first.WaitAsync(Patience)).Value);
        Assert.Equal("c", (await third.WaitAsync(Patience)).Value);
        server.Service.Open("b");
        Assert.Equal("b", (await second.WaitAsync(Patience)).Value);
    }
}
