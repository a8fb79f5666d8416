using DiffKeeper.TestSupport.Ttrpc;
using System.Net.Sockets;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc.Framing;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// A peer that writes requests and never reads the replies must meet backpressure: the shim may keep a bounded
/// number of calls in flight per connection, not buffer replies until memory runs out. Its own shim, so the
/// memory measured is this peer's doing alone.
/// </summary>
public class GreedyPeerMemoryTests(ITestOutputHelper output)
{
    private const long AllowedGrowthKb = 64 * 1024;

    [SkippableFact]
    public async Task Peer_that_never_reads_replies_cannot_grow_the_shim_without_bound()
    {
        await using var shim = await RunningShim.StartAsync();
        long before = RssKb(shim.Pid);
        using var greedy = await RawConnection.OpenAsync(shim.SocketPath, receiveBuffer: 4096);

        const int perChunk = 500, maxChunks = 200; // up to 100k Connect requests, ~5 MB on the wire
        int sent = 0;
        bool pushedBack = false;
        uint stream = 1;
        for (int c = 0; c < maxChunks && !pushedBack; c++)
        {
            var chunk = new List<byte>();
            for (int i = 0; i < perChunk; i++, stream += 2)
                chunk.AddRange(TtrpcWire.EncodeRequest(stream, RunningShim.TaskService, "Connect", new ConnectRequest { Id = shim.Id }));
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await greedy.Socket.SendAsync(chunk.ToArray(), SocketFlags.None, bound.Token);
                sent += perChunk;
            }
            catch (OperationCanceledException)
            {
                pushedBack = true;
            }
        }
        await Task.Delay(300); // let the calls already read finish queueing their replies
        long after = RssKb(shim.Pid);
        output.WriteLine($"sent {sent} requests unread; pushed back: {pushedBack}; RSS {before} kB -> {after} kB");

        Assert.True(after - before < AllowedGrowthKb,
            $"shim RSS grew by {(after - before) / 1024} MB ({before} -> {after} kB) for {sent} requests whose replies were " +
            $"never read; the shim never stopped reading (pushed back: {pushedBack})");
        await WellBehavedClient.AssertServedAsync(shim);
    }

    private static long RssKb(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Replace("kB", "").Trim());
    }
}
