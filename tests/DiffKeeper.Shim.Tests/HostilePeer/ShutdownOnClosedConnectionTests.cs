using DiffKeeper.TestSupport.Ttrpc;
using System.Net.Sockets;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc.Framing;
using Xunit;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// Shutdown's effect must not depend on its reply being deliverable: containerd (or any client) may send Shutdown
/// and close the connection at once, and the stock runc shim still exits when it holds no container. Ours must too.
/// Regression: DiffKeeper.Ttrpc's ServerConnection used to read the request and the end of stream, dispose its
/// connection token source, and only then run the call on the thread pool, whose read of the disposed source's
/// token threw and was swallowed as "connection gone" — the Shutdown never ran. Calls now get the read loop's token.
/// </summary>
public class ShutdownOnClosedConnectionTests
{
    [SkippableTheory]
    [InlineData(false)] // closed right after the request is written
    [InlineData(true)]  // request written, write side shut down first (EOF after the frame), then closed
    public async Task Shutdown_whose_connection_closes_at_once_still_exits_an_empty_shim(bool halfCloseFirst)
    {
        await using var shim = await RunningShim.StartAsync();

        using (var connection = await RawConnection.OpenAsync(shim.SocketPath))
        {
            await connection.SendRequestAsync(1, RunningShim.TaskService, "Shutdown", new ShutdownRequest { Id = shim.Id });
            if (halfCloseFirst) connection.Socket.Shutdown(SocketShutdown.Send);
        } // closed without reading the reply

        Assert.True(await shim.WaitForExitAsync(TimeSpan.FromSeconds(5)),
            "the shim ignored a Shutdown whose connection closed before the reply\n" + shim.Log);
        Assert.False(File.Exists(shim.SocketPath), $"{shim.SocketPath} left behind");
    }

    /// <summary>
    /// The same with the Shutdown behind a burst of pipelined calls, all in one write followed by close: the server
    /// reads the whole burst and the end of stream before the thread pool gets to the calls, the widest window for
    /// a dispatch that gives up because the connection is already gone.
    /// </summary>
    [SkippableFact]
    public async Task Shutdown_behind_pipelined_calls_on_a_connection_closed_at_once_still_exits_an_empty_shim()
    {
        await using var shim = await RunningShim.StartAsync();

        using (var connection = await RawConnection.OpenAsync(shim.SocketPath))
        {
            var burst = new List<byte>();
            uint stream = 1;
            for (int i = 0; i < 200; i++, stream += 2)
                burst.AddRange(TtrpcWire.EncodeRequest(stream, RunningShim.TaskService, "Connect", new ConnectRequest { Id = shim.Id }));
            burst.AddRange(TtrpcWire.EncodeRequest(stream, RunningShim.TaskService, "Shutdown", new ShutdownRequest { Id = shim.Id }));
            await connection.SendAsync(burst.ToArray());
        }

        Assert.True(await shim.WaitForExitAsync(TimeSpan.FromSeconds(5)),
            "the shim ignored a pipelined Shutdown whose connection closed before the replies\n" + shim.Log);
        Assert.False(File.Exists(shim.SocketPath), $"{shim.SocketPath} left behind");
    }
}
