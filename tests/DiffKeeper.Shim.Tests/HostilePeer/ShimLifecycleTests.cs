using DiffKeeper.TestSupport.Ttrpc;
using System.Diagnostics;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc;
using DiffKeeper.Ttrpc.Framing;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>The real binary's start, survival of abuse, and Shutdown; each test with a shim of its own.</summary>
public class ShimLifecycleTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Start_prints_exactly_the_computed_address_and_records_it()
    {
        await using var shim = await RunningShim.StartAsync();
        output.WriteLine($"start took {shim.StartDuration.TotalMilliseconds:F1} ms");

        Assert.Equal(shim.ExpectedAddress, shim.PrintedAddress); // nothing else on stdout+stderr, not even a newline
        Assert.Equal(shim.PrintedAddress, File.ReadAllText(Path.Combine(shim.Bundle, "address")));
        Assert.True(File.Exists(shim.SocketPath));
        Assert.NotEqual(Environment.ProcessId, shim.Pid);
    }

    [SkippableFact]
    public async Task Survives_abuse_then_Shutdown_exits_and_removes_the_socket()
    {
        await using var shim = await RunningShim.StartAsync();

        using (var garbage = await RawConnection.OpenAsync(shim.SocketPath))
        {
            await garbage.SendAsync(Enumerable.Range(0, 64).Select(i => (byte)(0xA5 ^ i)).ToArray());
            Assert.True(await garbage.IsClosedByPeerAsync(TimeSpan.FromSeconds(5)));
        }
        using (var half = await RawConnection.OpenAsync(shim.SocketPath))
        {
            await half.SendAsync(TtrpcWire.EncodeRequest(1, RunningShim.TaskService, "Connect", new ConnectRequest())[..12]);
        }
        using (var oversized = await RawConnection.OpenAsync(shim.SocketPath))
        {
            var frame = new byte[TtrpcFrame.HeaderSize + TtrpcFrame.DefaultMaxMessageSize + 100];
            TtrpcFrame.WriteHeader(frame, new TtrpcFrameHeader((uint)(frame.Length - TtrpcFrame.HeaderSize), 1, TtrpcMessageType.Request));
            var sending = oversized.SendAsync(frame);
            var (_, response) = await oversized.ReadResponseAsync(TimeSpan.FromSeconds(10));
            await sending;
            Assert.Equal((int)TtrpcStatusCode.ResourceExhausted, response.Status?.Code);
        }
        Assert.Equal(0, Libc.Kill(shim.Pid, 0));
        Assert.True(shim.IsAlive, "the shim died under abuse\n" + shim.Log);
        await WellBehavedClient.AssertServedAsync(shim);

        var clock = Stopwatch.StartNew();
        await using (var client = await shim.ConnectAsync())
        {
            try
            {
                await client.CallAsync(RunningShim.TaskService, "Shutdown", new ShutdownRequest { Id = shim.Id }, Empty.Parser,
                    timeout: TimeSpan.FromSeconds(3));
            }
            catch (TtrpcException e) when (e.Code == TtrpcStatusCode.Unavailable)
            {
                // containerd treats a connection closed by an exiting shim as success.
            }
        }
        Assert.True(await shim.WaitForExitAsync(TimeSpan.FromSeconds(5)), "the shim did not exit after Shutdown\n" + shim.Log);
        output.WriteLine($"Shutdown to exit: {clock.Elapsed.TotalMilliseconds:F1} ms");
        Assert.False(File.Exists(shim.SocketPath), $"{shim.SocketPath} left behind");
    }

    [SkippableFact]
    public async Task Second_start_for_the_same_address_reuses_the_live_shim()
    {
        await using var shim = await RunningShim.StartAsync();
        var psi = new ProcessStartInfo(await Binaries.RequireOrPublishAsync(Binaries.Shim, "src/DiffKeeper.Shim"))
        {
            ArgumentList = { "-namespace", shim.Namespace, "-address", shim.ContainerdAddress, "-publish-binary", "/bin/true", "-id", shim.Id, "start" },
            WorkingDirectory = shim.Bundle,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var again = Process.Start(psi)!;
        var printed = await again.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await again.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(0, again.ExitCode);
        Assert.Equal(shim.PrintedAddress, printed);
        await WellBehavedClient.AssertServedAsync(shim); // the same process still serves
    }
}
