using DiffKeeper.Ttrpc.Server;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Server;

public class PeerCredentialTests
{
    [Fact]
    public async Task Peer_credentials_are_those_of_the_connecting_process()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        // Our own raw socket: its peer (the server side) is this process too, so the kernel reports our pid.
        var peer = PeerCredentials.Of(raw.Socket);

        Assert.Equal(Environment.ProcessId, peer.Pid);
        Assert.True(peer.IsSameUserAsThisProcess());
    }

    [Fact]
    public async Task Same_user_peers_are_served_when_required()
    {
        await using var server = new TestServer(new TtrpcServerOptions { RequireSameUser = true });
        await using var client = await server.ConnectAsync();

        Assert.Equal("me", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "me" }, StringValue.Parser)).Value);
    }
}
