using DiffKeeper.TestSupport.Ttrpc;
using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Client;

public class ClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Uses_odd_stream_ids_and_matches_replies_by_id()
    {
        using var rawServer = new RawServer();
        await using var client = await TtrpcClient.ConnectAsync(rawServer.SocketPath);
        using var peer = await rawServer.AcceptAsync();

        var calls = new[] { "a", "b", "c" }.Select(v =>
            client.CallAsync("svc", "Echo", new StringValue { Value = v }, StringValue.Parser)).ToArray();
        var requests = new List<(uint StreamId, Request Request)>();
        for (int i = 0; i < 3; i++)
        {
            var frame = await TtrpcWire.ReadAsync(peer) ?? throw new EndOfStreamException();
            Assert.Equal(TtrpcMessageType.Request, frame.Header.Type);
            requests.Add((frame.Header.StreamId, Request.Parser.ParseFrom(frame.Payload)));
        }

        Assert.Equal(new uint[] { 1, 3, 5 }, requests.Select(r => r.StreamId).Order());
        // Answer in reverse, each with its own request's value upper-cased.
        foreach (var (streamId, request) in Enumerable.Reverse(requests))
        {
            var value = StringValue.Parser.ParseFrom(request.Payload).Value.ToUpperInvariant();
            var response = new Response { Payload = new StringValue { Value = value }.ToByteString() };
            await peer.SendAsync(TtrpcWire.Encode(streamId, TtrpcMessageType.Response, response.ToByteArray()));
        }
        var replies = await Task.WhenAll(calls).WaitAsync(Patience);
        Assert.Equal(["A", "B", "C"], replies.Select(r => r.Value));
    }

    [Fact]
    public async Task Connection_drop_fails_every_pending_call_with_Unavailable()
    {
        using var rawServer = new RawServer();
        await using var client = await TtrpcClient.ConnectAsync("unix://" + rawServer.SocketPath);
        var peer = await rawServer.AcceptAsync();
        var first = client.CallAsync("svc", "Wait", new Empty(), Empty.Parser);
        var second = client.CallAsync("svc", "Wait", new Empty(), Empty.Parser);
        await TtrpcWire.ReadAsync(peer);
        await TtrpcWire.ReadAsync(peer);

        peer.Dispose();

        foreach (var call in new[] { first, second })
        {
            var e = await Assert.ThrowsAsync<TtrpcException>(() => call.WaitAsync(Patience));
            Assert.Equal(TtrpcStatusCode.Unavailable, e.Code);
        }
        Assert.False(client.IsConnected);
        var late = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync("svc", "Wait", new Empty(), Empty.Parser));
        Assert.Equal(TtrpcStatusCode.Unavailable, late.Code);
    }

    [Fact]
    public async Task Timeout_without_a_reply_is_DeadlineExceeded_and_is_sent_to_the_server()
    {
        using var rawServer = new RawServer();
        await using var client = await TtrpcClient.ConnectAsync(rawServer.SocketPath);
        using var peer = await rawServer.AcceptAsync();

        var call = client.CallAsync("svc", "Silent", new Empty(), Empty.Parser, timeout: TimeSpan.FromMilliseconds(300));
        var frame = await TtrpcWire.ReadAsync(peer) ?? throw new EndOfStreamException();
        var e = await Assert.ThrowsAsync<TtrpcException>(() => call.WaitAsync(Patience));

        Assert.Equal(300_000_000L, Request.Parser.ParseFrom(frame.Payload).TimeoutNano);
        Assert.Equal(TtrpcStatusCode.DeadlineExceeded, e.Code);
        Assert.True(client.IsConnected);
        // A reply arriving after the deadline is dropped without disturbing the connection.
        await peer.SendAsync(TtrpcWire.Encode(frame.Header.StreamId, TtrpcMessageType.Response, []));
        var next = client.CallAsync("svc", "Next", new Empty(), Empty.Parser);
        var nextFrame = await TtrpcWire.ReadAsync(peer) ?? throw new EndOfStreamException();
        await peer.SendAsync(TtrpcWire.Encode(nextFrame.Header.StreamId, TtrpcMessageType.Response, []));
        await next.WaitAsync(Patience);
    }

    [Fact]
    public async Task Oversized_reply_fails_that_call_only_and_garbage_closes_the_connection()
    {
        using var rawServer = new RawServer();
        await using var client = await TtrpcClient.ConnectAsync(rawServer.SocketPath);
        using var peer = await rawServer.AcceptAsync();
        var big = client.CallAsync("svc", "Big", new Empty(), Empty.Parser);
        var other = client.CallAsync("svc", "Other", new Empty(), Empty.Parser);
        uint bigId = 0;
        for (int i = 0; i < 2; i++)
        {
            var frame = await TtrpcWire.ReadAsync(peer) ?? throw new EndOfStreamException();
            if (Request.Parser.ParseFrom(frame.Payload).Method == "Big") bigId = frame.Header.StreamId;
        }

        var oversized = new byte[TtrpcFrame.HeaderSize + TtrpcFrame.DefaultMaxMessageSize + 1];
        TtrpcFrame.WriteHeader(oversized, new TtrpcFrameHeader((uint)(oversized.Length - TtrpcFrame.HeaderSize), bigId, TtrpcMessageType.Response));
        await peer.SendAsync(oversized);

        var e = await Assert.ThrowsAsync<TtrpcException>(() => big.WaitAsync(Patience));
        Assert.Equal(TtrpcStatusCode.ResourceExhausted, e.Code);
        Assert.False(other.IsCompleted);
        Assert.True(client.IsConnected);

        await peer.SendAsync("garbage!!!"u8.ToArray());
        var lost = await Assert.ThrowsAsync<TtrpcException>(() => other.WaitAsync(Patience));
        Assert.Equal(TtrpcStatusCode.Unavailable, lost.Code);
        Assert.Contains("non-ttrpc", lost.Message);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task Timeout_that_already_passed_fails_without_sending_and_infinite_means_none()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestService.Name, "Timeout", new Empty(), Int64Value.Parser, timeout: TimeSpan.Zero));
        var infinite = await client.CallAsync(TestService.Name, "Timeout", new Empty(), Int64Value.Parser, timeout: Timeout.InfiniteTimeSpan);
        var hundredDays = await client.CallAsync(TestService.Name, "Timeout", new Empty(), Int64Value.Parser, timeout: TimeSpan.FromDays(100));

        Assert.Equal(TtrpcStatusCode.DeadlineExceeded, e.Code);
        Assert.Equal(-1, infinite.Value);
        Assert.Equal((long)TimeSpan.FromDays(100).TotalMilliseconds, hundredDays.Value);
    }

    [Fact]
    public async Task Cancellation_abandons_only_that_call()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();
        using var cancel = new CancellationTokenSource();

        var call = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "never" }, StringValue.Parser, ct: cancel.Token);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Patience));
        Assert.Equal("on", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "on" }, StringValue.Parser)).Value);
    }

    [Fact]
    public async Task Oversized_request_is_refused_locally()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(TestService.Name, "Echo",
            new StringValue { Value = new string('x', 5 << 20) }, StringValue.Parser));

        Assert.Equal(TtrpcStatusCode.ResourceExhausted, e.Code);
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task Server_disposal_closes_the_client_connection()
    {
        var server = new TestServer();
        await using var client = await server.ConnectAsync();
        var pending = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "forever" }, StringValue.Parser);

        await server.DisposeAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() => pending.WaitAsync(Patience));
        Assert.Equal(TtrpcStatusCode.Unavailable, e.Code);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task Server_disposal_lets_a_call_in_flight_answer_first()
    {
        var server = new TestServer(new TtrpcServerOptions { ShutdownGracePeriod = TimeSpan.FromSeconds(5) });
        await using var client = await server.ConnectAsync();
        var shutdownLike = client.CallAsync(TestService.Name, "SleepIgnoringToken", new Int32Value { Value = 300 }, Empty.Parser);
        await Task.Delay(100);

        await server.DisposeAsync();

        await shutdownLike.WaitAsync(Patience); // answered, not failed
    }

    [Theory]
    [InlineData("unix://")]
    [InlineData("")]
    public async Task Connects_to_a_path_with_or_without_scheme(string prefix)
    {
        await using var server = new TestServer();
        await using var client = await TtrpcClient.ConnectAsync(prefix + server.SocketPath);

        Assert.Equal("x", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "x" }, StringValue.Parser)).Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("@")]
    public async Task Connects_to_an_abstract_socket_name(string prefix)
    {
        var name = $"diffkeeper-ttrpc-test-{Guid.NewGuid():N}";
        await using var server = new TestServer(abstractName: name);
        await using var client = await TtrpcClient.ConnectAsync(prefix + name);

        Assert.Equal("y", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "y" }, StringValue.Parser)).Value);
    }

    [Fact]
    public async Task Connecting_to_nothing_throws_SocketException()
    {
        await Assert.ThrowsAnyAsync<SocketException>(() =>
            TtrpcClient.ConnectAsync($"/tmp/dk-ttrpc-missing-{Guid.NewGuid():N}.sock"));
    }
}
