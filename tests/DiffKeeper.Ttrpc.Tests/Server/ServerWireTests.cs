using DiffKeeper.TestSupport.Ttrpc;
using System.Net.Sockets;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Server;

/// <summary>The server seen from a hand-driven socket: exact bytes, bad frames, broken peers.</summary>
public class ServerWireTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Empty_result_is_exactly_a_ten_byte_frame()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        await raw.SendRequestAsync(0x0b, TestService.Name, "Empty", new Empty());
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x02, 0x00 }, await raw.ReadBytesAsync(10));

        // Nothing hides after it: the next bytes are the next call's header.
        await raw.SendRequestAsync(0x0d, TestService.Name, "Echo", new StringValue { Value = "next" });
        var (header, response) = await raw.ReadResponseAsync();
        Assert.Equal(0x0du, header.StreamId);
        Assert.Equal("next", StringValue.Parser.ParseFrom(response.Payload).Value);
    }

    [Fact]
    public async Task Pipelined_calls_are_answered_on_the_wire_as_they_finish()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        // Three requests in one write; the first two wait, the third answers at once.
        byte[] pipelined =
        [
            .. TtrpcWire.EncodeRequest(1, TestService.Name, "WaitGate", new StringValue { Value = "one" }),
            .. TtrpcWire.EncodeRequest(3, TestService.Name, "WaitGate", new StringValue { Value = "three" }),
            .. TtrpcWire.EncodeRequest(5, TestService.Name, "Echo", new StringValue { Value = "five" }),
        ];
        await raw.SendAsync(pipelined);

        Assert.Equal(5u, (await raw.ReadResponseAsync()).Header.StreamId);
        server.Service.Open("three");
        Assert.Equal(3u, (await raw.ReadResponseAsync()).Header.StreamId);
        server.Service.Open("one");
        var (header, response) = await raw.ReadResponseAsync();
        Assert.Equal(1u, header.StreamId);
        Assert.Equal("one", StringValue.Parser.ParseFrom(response.Payload).Value);
    }

    [Fact]
    public async Task Even_stream_id_is_rejected_and_the_connection_survives()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        await raw.SendRequestAsync(2, TestService.Name, "Echo", new StringValue { Value = "even" });
        var (header, response) = await raw.ReadResponseAsync();

        Assert.Equal(2u, header.StreamId);
        Assert.Equal((int)TtrpcStatusCode.InvalidArgument, response.Status.Code);
        await AssertEchoWorksAsync(raw, 7);
    }

    [Fact]
    public async Task Oversized_request_is_skipped_answered_ResourceExhausted_and_the_connection_survives()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();
        int oversized = TtrpcFrame.DefaultMaxMessageSize + 1;
        var frame = new byte[TtrpcFrame.HeaderSize + oversized];
        TtrpcFrame.WriteHeader(frame, new TtrpcFrameHeader((uint)oversized, 1, TtrpcMessageType.Request));
        new Random(42).NextBytes(frame.AsSpan(TtrpcFrame.HeaderSize)); // payload that would not even decode

        // Send concurrently: the server must drain while we write, or both sides would block on full buffers.
        var sending = raw.SendAsync(frame);
        var (header, response) = await raw.ReadResponseAsync();
        await sending;

        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)TtrpcStatusCode.ResourceExhausted, response.Status.Code);
        await AssertEchoWorksAsync(raw, 3);
    }

    [Fact]
    public async Task Oversized_request_from_the_client_fails_only_that_call()
    {
        await using var server = new TestServer();
        // A client allowed to send more than the server accepts.
        await using var client = await TtrpcClient.ConnectAsync(server.Address, maxMessageSize: 8 << 20);
        var big = new StringValue { Value = new string('b', 5 << 20) };

        var e = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(TestService.Name, "Echo", big, StringValue.Parser));

        Assert.Equal(TtrpcStatusCode.ResourceExhausted, e.Code);
        Assert.Equal("after", (await client.CallAsync(TestService.Name, "Echo", new StringValue { Value = "after" }, StringValue.Parser)).Value);
    }

    public static TheoryData<string, byte[]> BrokenInputs => new()
    {
        { "text", "this is not ttrpc at all, sorry\n"u8.ToArray() },
        { "unknown frame type", [0, 0, 0, 2, 0, 0, 0, 1, 9, 0, 0, 0] },
        { "absurd length", [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0] },
        { "half header", [0, 0, 0, 4, 0] },
        { "half payload", [0, 0, 0, 100, 0, 0, 0, 1, 1, 0, .. new byte[20]] },
    };

    [Theory]
    [MemberData(nameof(BrokenInputs))]
    public async Task Broken_input_closes_only_that_connection(string what, byte[] input)
    {
        await using var server = new TestServer();
        await using var bystander = await server.ConnectAsync();
        using var raw = await server.ConnectRawAsync();
        await WaitForAsync(() => server.Server.OpenConnections == 2);
        var closed = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Server.ConnectionClosed += open => closed.TrySetResult(open);

        await raw.SendAsync(input);
        raw.Socket.Shutdown(SocketShutdown.Send); // a half frame is only "half" once nothing more can come

        Assert.Null(await raw.ReadFrameAsync()); // closed without an answer
        Assert.Equal(1, await closed.Task.WaitAsync(Patience));
        Assert.Equal(1, server.Server.OpenConnections);
        // The open connection and new ones keep working.
        Assert.Equal(what, (await bystander.CallAsync(TestService.Name, "Echo", new StringValue { Value = what }, StringValue.Parser)).Value);
        using var fresh = await server.ConnectRawAsync();
        await AssertEchoWorksAsync(fresh, 1);
    }

    [Theory]
    [InlineData(5)]   // inside the header
    [InlineData(30)]  // inside the payload (header says 100 bytes)
    public async Task Half_frame_followed_by_silence_is_closed_after_the_timeout_but_idle_connections_are_not(int sent)
    {
        var log = new List<string>();
        await using var server = new TestServer(new TtrpcServerOptions
        {
            IncompleteFrameTimeout = TimeSpan.FromMilliseconds(300),
            Log = line => { lock (log) log.Add(line); },
        });
        using var idle = await server.ConnectRawAsync();
        using var stalled = await server.ConnectRawAsync();
        byte[] frame = [0, 0, 0, 100, 0, 0, 0, 1, 1, 0, .. new byte[100]];

        await stalled.SendAsync(frame[..sent]); // and nothing more, without closing
        Assert.Null(await stalled.ReadFrameAsync());

        await WaitForAsync(() => { lock (log) return log.Any(line => line.Contains("incomplete after")); });
        await Task.Delay(300); // the idle connection has sat through more than a timeout by now
        await AssertEchoWorksAsync(idle, 1);
    }

    [Fact]
    public async Task Undecodable_envelope_is_InvalidArgument_and_the_connection_survives()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        await raw.SendAsync(TtrpcWire.Encode(1, TtrpcMessageType.Request, [0x0a, 0x7f, 0x01])); // string field cut short
        var (header, response) = await raw.ReadResponseAsync();

        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)TtrpcStatusCode.InvalidArgument, response.Status.Code);
        await AssertEchoWorksAsync(raw, 3);
    }

    [Fact]
    public async Task Server_answers_DeadlineExceeded_even_when_the_handler_ignores_its_token()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();
        var started = DateTime.UtcNow;

        await raw.SendRequestAsync(1, TestService.Name, "SleepIgnoringToken", new Int32Value { Value = 5000 }, TimeSpan.FromMilliseconds(200));
        var (header, response) = await raw.ReadResponseAsync();

        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)TtrpcStatusCode.DeadlineExceeded, response.Status.Code);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Data_frames_are_ignored()
    {
        await using var server = new TestServer();
        using var raw = await server.ConnectRawAsync();

        await raw.SendAsync(TtrpcWire.Encode(1, TtrpcMessageType.Data, [1, 2, 3], flags: 0x01));

        await AssertEchoWorksAsync(raw, 3);
    }

    private static async Task AssertEchoWorksAsync(RawConnection raw, uint streamId)
    {
        await raw.SendRequestAsync(streamId, TestService.Name, "Echo", new StringValue { Value = "still here" });
        var (header, response) = await raw.ReadResponseAsync();
        Assert.Equal(streamId, header.StreamId);
        Assert.Null(response.Status);
        Assert.Equal("still here", StringValue.Parser.ParseFrom(response.Payload).Value);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10);
        }
    }
}
