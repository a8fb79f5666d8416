using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Server;

/// <summary>Calls through the real client against the real server on a unix socket.</summary>
public class ServerCallTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Echo_round_trips()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var reply = await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "héllo" }, StringValue.Parser);

        Assert.Equal("héllo", reply.Value);
    }

    [Fact]
    public async Task Replies_come_back_in_completion_order_not_request_order()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var first = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "first" }, StringValue.Parser);
        var second = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "second" }, StringValue.Parser);
        var third = client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "third" }, StringValue.Parser);

        Assert.Equal("third", (await third.WaitAsync(Patience)).Value);
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);

        server.Service.Open("second");
        Assert.Equal("second", (await second.WaitAsync(Patience)).Value);
        Assert.False(first.IsCompleted);

        server.Service.Open("first");
        Assert.Equal("first", (await first.WaitAsync(Patience)).Value);
    }

    [Fact]
    public async Task A_pending_call_does_not_hold_up_others_even_when_it_blocks_its_thread()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();
        var pending = client.CallAsync(TestService.Name, "WaitGate", new StringValue { Value = "wait" }, StringValue.Parser);
        var blocking = client.CallAsync(TestService.Name, "BlockGate", new StringValue { Value = "block" }, StringValue.Parser);

        var others = Enumerable.Range(0, 50).Select(i =>
            client.CallAsync(TestService.Name, "Echo", new StringValue { Value = i.ToString() }, StringValue.Parser)).ToArray();
        var replies = await Task.WhenAll(others).WaitAsync(Patience);

        Assert.Equal(Enumerable.Range(0, 50).Select(i => i.ToString()), replies.Select(r => r.Value));
        Assert.False(pending.IsCompleted);
        Assert.False(blocking.IsCompleted);
        server.Service.Open("wait");
        server.Service.Open("block");
        await Task.WhenAll(pending, blocking).WaitAsync(Patience);
    }

    [Fact]
    public async Task Concurrent_callers_on_one_connection_each_get_their_own_reply()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        // Mixed sizes, many bigger than the socket buffer so sends go out in pieces: without serialized writes
        // the pieces of concurrent frames would interleave and corrupt the stream.
        var callers = Enumerable.Range(0, 8).Select(caller => Task.Run(async () =>
        {
            for (int i = 0; i < 40; i++)
            {
                var value = $"{caller}:{i}:" + new string((char)('a' + caller), (caller * 99_991 + i * 13_131) % 700_000);
                var reply = await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = value }, StringValue.Parser);
                Assert.Equal(value, reply.Value);
            }
        }));

        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task Unknown_service_or_method_is_Unimplemented()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var noService = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync("no.such.Service", "Echo", new Empty(), Empty.Parser));
        var noMethod = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestService.Name, "NoSuchMethod", new Empty(), Empty.Parser));

        Assert.Equal(TtrpcStatusCode.Unimplemented, noService.Code);
        Assert.Contains("no.such.Service", noService.Message);
        Assert.Equal(TtrpcStatusCode.Unimplemented, noMethod.Code);
        Assert.Contains("NoSuchMethod", noMethod.Message);
    }

    [Fact]
    public async Task Handler_exception_answers_Unknown_with_its_message()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestService.Name, "Throw", new StringValue { Value = "runc exploded" }, Empty.Parser));

        Assert.Equal(TtrpcStatusCode.Unknown, e.Code);
        Assert.Equal("runc exploded", e.Message);
        Assert.True(client.IsConnected);
    }

    [Theory]
    [InlineData(TtrpcStatusCode.NotFound)]
    [InlineData(TtrpcStatusCode.AlreadyExists)]
    [InlineData(TtrpcStatusCode.FailedPrecondition)]
    [InlineData(TtrpcStatusCode.InvalidArgument)]
    [InlineData(TtrpcStatusCode.Unavailable)]
    public async Task TtrpcException_code_and_message_pass_through(TtrpcStatusCode code)
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestService.Name, "Status", new Int32Value { Value = (int)code }, Empty.Parser));

        Assert.Equal(code, e.Code);
        Assert.Equal($"chosen status {(int)code}", e.Message);
    }

    [Fact]
    public async Task Metadata_arrives_in_order_with_repeated_keys()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var reply = await client.CallAsync(TestService.Name, "Metadata", new Empty(), StringValue.Parser,
            metadata: [new("containerd-namespace", "k8s.io"), new("trace", "a"), new("trace", "b")]);

        Assert.Equal("containerd-namespace=k8s.io;trace=a;trace=b", reply.Value);
    }

    [Fact]
    public async Task Handler_sees_the_callers_timeout()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var with = await client.CallAsync(TestService.Name, "Timeout", new Empty(), Int64Value.Parser, timeout: TimeSpan.FromSeconds(2));
        var without = await client.CallAsync(TestService.Name, "Timeout", new Empty(), Int64Value.Parser);

        Assert.Equal(2000, with.Value);
        Assert.Equal(-1, without.Value);
    }

    [Fact]
    public async Task Timeout_cancels_the_handler_and_answers_DeadlineExceeded()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(TestService.Name, "SleepUntilCancelled",
            new StringValue { Value = "t1" }, Empty.Parser, timeout: TimeSpan.FromMilliseconds(200)));

        Assert.Equal(TtrpcStatusCode.DeadlineExceeded, e.Code);
        await server.Service.WasCancelled("t1").Task.WaitAsync(Patience);
        // The connection is still good.
        Assert.Equal("ok", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "ok" }, StringValue.Parser)).Value);
    }

    [Fact]
    public async Task Response_over_the_limit_is_answered_ResourceExhausted()
    {
        await using var server = new TestServer();
        await using var client = await server.ConnectAsync();

        var e = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(TestService.Name, "Big",
            new Int32Value { Value = 5 << 20 }, BytesValue.Parser));

        Assert.Equal(TtrpcStatusCode.ResourceExhausted, e.Code);
        var justUnder = await client.CallAsync(TestService.Name, "Big", new Int32Value { Value = (4 << 20) - 16 }, BytesValue.Parser);
        Assert.Equal((4 << 20) - 16, justUnder.Value.Length);
    }
}
