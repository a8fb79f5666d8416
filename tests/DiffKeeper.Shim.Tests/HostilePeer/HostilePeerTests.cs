using DiffKeeper.TestSupport.Ttrpc;
using System.Diagnostics;
using System.Net.Sockets;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc;
using DiffKeeper.Ttrpc.Framing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// The real published shim against peers that do not play by ttrpc's rules. Whatever one connection does, the
/// shim must stay up and keep answering containerd on its other connections.
/// </summary>
public class HostilePeerTests(ShimUnderAttack fixture, ITestOutputHelper output) : IClassFixture<ShimUnderAttack>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private const string Task = RunningShim.TaskService;

    [SkippableFact]
    public async Task Garbage_closes_that_connection_only()
    {
        var shim = await fixture.GetAsync();
        using var hostile = await RawConnection.OpenAsync(shim.SocketPath);
        // Not ttrpc: read as a header it claims a ~1.2 GB payload.
        await hostile.SendAsync("GET / HTTP/1.1\r\nHost: shim\r\n\r\n"u8.ToArray());

        Assert.True(await hostile.IsClosedByPeerAsync(Patience), "the shim kept a garbage connection open");
        await WellBehavedClient.AssertServedAsync(shim);
    }

    [SkippableFact]
    public async Task Unknown_frame_type_closes_that_connection_only()
    {
        var shim = await fixture.GetAsync();
        using var hostile = await RawConnection.OpenAsync(shim.SocketPath);
        await hostile.SendAsync(TtrpcWire.Encode(1, (TtrpcMessageType)7, new byte[] { 1, 2, 3 }));

        Assert.True(await hostile.IsClosedByPeerAsync(Patience), "the shim kept a connection with a bogus frame type");
        await WellBehavedClient.AssertServedAsync(shim);
    }

    [SkippableFact]
    public async Task Undecodable_envelope_is_InvalidArgument_and_the_connection_survives()
    {
        var shim = await fixture.GetAsync();
        using var peer = await RawConnection.OpenAsync(shim.SocketPath);
        // 0xff… is a varint that never ends: not a protobuf message.
        await peer.SendAsync(TtrpcWire.Encode(1, TtrpcMessageType.Request, Enumerable.Repeat((byte)0xff, 16).ToArray()));

        var ((_, stream, _, _), response) = await peer.ReadResponseAsync(Patience);
        Assert.Equal(1u, stream);
        Assert.Equal((int)TtrpcStatusCode.InvalidArgument, response.Status?.Code);

        await AssertSameConnectionStillServesAsync(peer, shim, streamId: 3);
    }

    [SkippableFact]
    public async Task Half_frame_then_silence_does_not_hold_up_other_clients()
    {
        var shim = await fixture.GetAsync();
        using var stalled = await RawConnection.OpenAsync(shim.SocketPath);
        var frame = TtrpcWire.EncodeRequest(1, Task, "Connect", new ConnectRequest { Id = shim.Id });
        await stalled.SendAsync(frame[..(TtrpcFrame.HeaderSize + 5)]); // header promises more than ever comes

        var clock = Stopwatch.StartNew();
        await using var client = await shim.ConnectAsync();
        for (int i = 0; i < 20; i++)
        {
            var connect = await client.CallAsync(Task, "Connect", new ConnectRequest { Id = shim.Id }, ConnectResponse.Parser,
                timeout: WellBehavedClient.CallBound);
            Assert.Equal(shim.Pid, (int)connect.ShimPid);
        }
        output.WriteLine($"20 Connect calls beside a stalled half frame: {clock.Elapsed.TotalMilliseconds:F1} ms");
        await WellBehavedClient.AssertServedAsync(shim);

        // The stalled peer finishing its frame late is still answered: the shim was merely waiting.
        await stalled.SendAsync(frame[(TtrpcFrame.HeaderSize + 5)..]);
        var ((_, stream, _, _), response) = await stalled.ReadResponseAsync(Patience);
        Assert.Equal(1u, stream);
        Assert.Null(response.Status);
    }

    [SkippableFact]
    public async Task Oversized_frame_is_ResourceExhausted_and_the_connection_survives()
    {
        var shim = await fixture.GetAsync();
        using var peer = await RawConnection.OpenAsync(shim.SocketPath);
        var oversized = new byte[TtrpcFrame.HeaderSize + TtrpcFrame.DefaultMaxMessageSize + 1];
        TtrpcFrame.WriteHeader(oversized, new TtrpcFrameHeader((uint)TtrpcFrame.DefaultMaxMessageSize + 1, 1, TtrpcMessageType.Request));
        var sending = peer.SendAsync(oversized); // the shim drains it while we wait for the answer

        var ((_, stream, _, _), response) = await peer.ReadResponseAsync(TimeSpan.FromSeconds(10));
        await sending;
        Assert.Equal(1u, stream);
        Assert.Equal((int)TtrpcStatusCode.ResourceExhausted, response.Status?.Code);

        await AssertSameConnectionStillServesAsync(peer, shim, streamId: 3);
    }

    [SkippableFact]
    public async Task Unknown_service_or_method_is_Unimplemented()
    {
        var shim = await fixture.GetAsync();
        await using var client = await shim.ConnectAsync();

        var noService = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync("containerd.task.v2.Nope", "Connect", new Empty(), Empty.Parser, timeout: Patience));
        Assert.Equal(TtrpcStatusCode.Unimplemented, noService.Code);

        var noMethod = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(Task, "Frobnicate", new Empty(), Empty.Parser, timeout: Patience));
        Assert.Equal(TtrpcStatusCode.Unimplemented, noMethod.Code);

        // The same connection still works.
        var connect = await client.CallAsync(Task, "Connect", new ConnectRequest { Id = shim.Id }, ConnectResponse.Parser, timeout: Patience);
        Assert.Equal(shim.Pid, (int)connect.ShimPid);
    }

    [SkippableFact]
    public async Task Two_hundred_pipelined_calls_on_one_connection_are_all_answered()
    {
        var shim = await fixture.GetAsync();
        using var peer = await RawConnection.OpenAsync(shim.SocketPath);
        const int calls = 200;
        var burst = new List<byte>();
        for (uint i = 0; i < calls; i++)
        {
            uint stream = 2 * i + 1;
            burst.AddRange(i % 2 == 0
                ? TtrpcWire.EncodeRequest(stream, Task, "Connect", new ConnectRequest { Id = shim.Id })
                : TtrpcWire.EncodeRequest(stream, Task, "State", new StateRequest { Id = $"ghost-{i}" }));
        }
        var clock = Stopwatch.StartNew();
        await peer.SendAsync(burst.ToArray()); // one write: every request is in flight at once

        var answered = new Dictionary<uint, DiffKeeper.Ttrpc.Protocol.Response>();
        for (int i = 0; i < calls; i++)
        {
            var ((_, stream, _, _), response) = await peer.ReadResponseAsync(Patience);
            Assert.True(answered.TryAdd(stream, response), $"stream {stream} answered twice");
        }
        output.WriteLine($"{calls} pipelined calls answered in {clock.Elapsed.TotalMilliseconds:F1} ms");

        for (uint i = 0; i < calls; i++)
        {
            var response = answered[2 * i + 1];
            if (i % 2 == 0)
            {
                Assert.Null(response.Status);
                Assert.Equal(shim.Pid, (int)ConnectResponse.Parser.ParseFrom(response.Payload).ShimPid);
            }
            else
            {
                Assert.Equal((int)TtrpcStatusCode.NotFound, response.Status?.Code);
            }
        }
    }

    [SkippableFact]
    public async Task Even_stream_id_is_InvalidArgument()
    {
        var shim = await fixture.GetAsync();
        using var peer = await RawConnection.OpenAsync(shim.SocketPath);
        await peer.SendRequestAsync(2, Task, "Connect", new ConnectRequest { Id = shim.Id });

        var ((_, stream, _, _), response) = await peer.ReadResponseAsync(Patience);
        Assert.Equal(2u, stream);
        Assert.Equal((int)TtrpcStatusCode.InvalidArgument, response.Status?.Code);

        await peer.SendRequestAsync(5, Task, "Connect", new ConnectRequest { Id = shim.Id });
        var ((_, stream2, _, _), connect) = await peer.ReadResponseAsync(Patience);
        Assert.Equal(5u, stream2);
        Assert.Null(connect.Status);
    }

    [SkippableFact]
    public async Task Peer_that_never_reads_replies_does_not_wedge_other_connections()
    {
        var shim = await fixture.GetAsync();
        using var greedy = await RawConnection.OpenAsync(shim.SocketPath, receiveBuffer: 4096);
        var request = TtrpcWire.EncodeRequest(1, Task, "Connect", new ConnectRequest { Id = shim.Id });
        const int perChunk = 500;
        const int maxChunks = 40; // 20k requests (~1 MB) at most: enough to fill every buffer between us
        int chunks = 0;
        uint stream = 1;
        bool blocked = false;
        var chunk = new byte[request.Length * perChunk];
        while (chunks < maxChunks && !blocked)
        {
            for (int i = 0; i < perChunk; i++, stream += 2)
            {
                var frame = TtrpcWire.EncodeRequest(stream, Task, "Connect", new ConnectRequest { Id = shim.Id });
                frame.CopyTo(chunk, i * request.Length);
            }
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await greedy.Socket.SendAsync(chunk, SocketFlags.None, bound.Token);
                chunks++;
            }
            catch (OperationCanceledException)
            {
                blocked = true; // the shim stopped reading us: its replies to us have nowhere to go
            }
        }
        output.WriteLine($"greedy peer sent {chunks * perChunk} requests without reading; shim pushed back: {blocked}; " +
                         $"shim RSS {RssKb(shim.Pid)} kB (bounded memory: see GreedyPeerMemoryTests)");

        var clock = Stopwatch.StartNew();
        await WellBehavedClient.AssertServedAsync(shim);
        output.WriteLine($"well-behaved client served beside it in {clock.Elapsed.TotalMilliseconds:F1} ms");

        greedy.Dispose();
        await System.Threading.Tasks.Task.Delay(200);
        await WellBehavedClient.AssertServedAsync(shim);
    }

    [SkippableFact]
    public async Task Stray_response_and_data_frames_are_ignored()
    {
        var shim = await fixture.GetAsync();
        using var peer = await RawConnection.OpenAsync(shim.SocketPath);
        await peer.SendAsync(TtrpcWire.Encode(1, TtrpcMessageType.Response, new byte[] { 0x12, 0x00 }));
        await peer.SendAsync(TtrpcWire.Encode(3, TtrpcMessageType.Data, new byte[] { 1, 2, 3, 4 }, flags: 0x01));
        await peer.SendRequestAsync(5, Task, "Connect", new ConnectRequest { Id = shim.Id });

        var ((_, stream, _, _), response) = await peer.ReadResponseAsync(Patience); // the first answer is to the real request
        Assert.Equal(5u, stream);
        Assert.Null(response.Status);
    }

    [SkippableFact]
    public async Task Abandoned_connections_leak_no_descriptors()
    {
        var shim = await fixture.GetAsync();
        await WellBehavedClient.AssertServedAsync(shim);
        // The tests before this one share the shim and leave connections it is still closing: counting while they
        // go would inflate `before` (and fail the measurement check below now and then). Count once it is steady.
        int before = await SettledFdsAsync(shim.Pid);
        var peers = new List<RawConnection>();
        try
        {
            for (int i = 0; i < 300; i++)
            {
                var peer = await RawConnection.OpenAsync(shim.SocketPath);
                peers.Add(peer);
                switch (i % 3)
                {
                    case 0: break; // connects, says nothing
                    case 1: await peer.SendAsync(new byte[] { 0, 0, 0 }); break; // a third of a header
                    default: await peer.SendRequestAsync(1, Task, "Connect", new ConnectRequest { Id = shim.Id }); break; // asks, never reads
                }
            }
            await WellBehavedClient.AssertServedAsync(shim);
            Assert.True(OpenFds(shim.Pid) >= before + 300, "the shim did not hold the open connections (measurement is off)");
        }
        finally
        {
            foreach (var peer in peers) peer.Dispose();
        }

        var deadline = DateTime.UtcNow + Patience;
        int after;
        while ((after = OpenFds(shim.Pid)) > before + 2 && DateTime.UtcNow < deadline) await System.Threading.Tasks.Task.Delay(50);
        output.WriteLine($"shim descriptors: {before} before, {after} after 300 abandoned connections");
        Assert.True(after <= before + 2, $"shim holds {after - before} more descriptors after its peers went away");
        await WellBehavedClient.AssertServedAsync(shim);
    }

    [SkippableFact]
    public async Task Peers_that_vanish_before_their_reply_do_not_hurt_the_shim()
    {
        var shim = await fixture.GetAsync();
        for (int i = 0; i < 100; i++)
        {
            using var peer = await RawConnection.OpenAsync(shim.SocketPath);
            await peer.SendRequestAsync(1, Task, "State", new StateRequest { Id = "ghost" });
            await peer.SendRequestAsync(3, Task, "Connect", new ConnectRequest { Id = shim.Id });
            peer.Socket.LingerState = new LingerOption(true, 0); // close with RST: the reply hits a dead socket
        }
        await WellBehavedClient.AssertServedAsync(shim);
    }

    /// <summary>After the hostile frame, the very same connection answers a Connect on <paramref name="streamId"/>.</summary>
    private static async Task AssertSameConnectionStillServesAsync(RawConnection peer, RunningShim shim, uint streamId)
    {
        await peer.SendRequestAsync(streamId, Task, "Connect", new ConnectRequest { Id = shim.Id });
        var ((_, stream, _, _), connect) = await peer.ReadResponseAsync(Patience);
        Assert.Equal(streamId, stream);
        Assert.Null(connect.Status);
        Assert.Equal(shim.Pid, (int)ConnectResponse.Parser.ParseFrom(connect.Payload).ShimPid);
    }

    private static int OpenFds(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    /// <summary>The descriptor count once it has not changed for 500 ms (or after <see cref="Patience"/>).</summary>
    private static async Task<int> SettledFdsAsync(int pid)
    {
        var deadline = DateTime.UtcNow + Patience;
        int last = OpenFds(pid);
        var steadySince = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline && DateTime.UtcNow - steadySince < TimeSpan.FromMilliseconds(500))
        {
            await System.Threading.Tasks.Task.Delay(50);
            int now = OpenFds(pid);
            if (now != last) { last = now; steadySince = DateTime.UtcNow; }
        }
        return last;
    }

    private static string RssKb(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line?["VmRSS:".Length..].Trim().Replace(" kB", "") ?? "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
