using DiffKeeper.TestSupport.Containerd;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using DiffKeeper.Ttrpc.Tests.Interop.Protos;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit.Abstractions;

namespace DiffKeeper.Ttrpc.Tests.Interop;

/// <summary>
/// Our client against containerd's own ttrpc server (Go, containerd/ttrpc): the events service that shims use
/// to publish task events. Needs root and containerd; skipped otherwise unless DIFFKEEPER_REQUIRE_INTEGRATION=1.
/// </summary>
public class ContainerdInteropTests(ITestOutputHelper output)
{
    private const string EventsService = "containerd.services.events.ttrpc.v1.Events";

    [SkippableFact]
    public async Task Forwarded_event_is_accepted_and_published_by_containerd()
    {
        var (_, ctrPath) = RequireContainerd();
        await using var containerd = await PrivateContainerd.StartInTempAsync();
        using var watcher = new CtrEventsWatcher(ctrPath, containerd.Address);
        await using var client = await TtrpcClient.ConnectAsync("unix://" + containerd.TtrpcAddress);
        var containerId = $"dk-ttrpc-{Guid.NewGuid():N}";

        // Forward until `ctr events` shows it: the subscription may not be registered yet for the first ones.
        string? line = null;
        for (int attempt = 0; attempt < 40 && line is null; attempt++)
        {
            var empty = await client.CallAsync(EventsService, "Forward", TaskExitEvent(containerId, attempt), Empty.Parser,
                timeout: TimeSpan.FromSeconds(5));
            Assert.NotNull(empty);
            line = await watcher.WaitForLineAsync(containerId, TimeSpan.FromMilliseconds(250));
        }

        output.WriteLine($"ctr events: {line}");
        Assert.True(line is not null, $"containerd did not publish the event.\ncontainerd log:\n{containerd.Log}");
        Assert.Contains("diffkeeper-test /tasks/exit", line);
        Assert.Contains("\"exit_status\":7", line);
    }

    [SkippableFact]
    public async Task Containerd_status_errors_decode_as_TtrpcException()
    {
        RequireContainerd();
        await using var containerd = await PrivateContainerd.StartInTempAsync();
        await using var client = await TtrpcClient.ConnectAsync(containerd.TtrpcAddress);
        var noNamespace = TaskExitEvent("x", 0);
        noNamespace.Envelope.Namespace = "";

        var invalid = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(EventsService, "Forward", noNamespace, Empty.Parser));
        var unimplemented = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(EventsService, "NoSuchMethod", new Empty(), Empty.Parser));
        var unknownService = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync("no.such.Service", "Forward", new Empty(), Empty.Parser));

        output.WriteLine($"{invalid.Code}: {invalid.Message}");
        output.WriteLine($"{unimplemented.Code}: {unimplemented.Message}");
        output.WriteLine($"{unknownService.Code}: {unknownService.Message}");
        Assert.Equal(TtrpcStatusCode.InvalidArgument, invalid.Code);
        Assert.Contains("namespace", invalid.Message);
        Assert.Equal(TtrpcStatusCode.Unimplemented, unimplemented.Code);
        Assert.Equal(TtrpcStatusCode.Unimplemented, unknownService.Code);
        Assert.True(client.IsConnected);
    }

    [SkippableFact]
    public async Task Many_concurrent_calls_on_one_connection_to_containerd()
    {
        RequireContainerd();
        await using var containerd = await PrivateContainerd.StartInTempAsync();
        await using var client = await TtrpcClient.ConnectAsync(containerd.TtrpcAddress);

        var calls = Enumerable.Range(0, 200).Select(i =>
            client.CallAsync(EventsService, "Forward", TaskExitEvent($"dk-many-{i}", i), Empty.Parser, timeout: TimeSpan.FromSeconds(10)));
        var replies = await Task.WhenAll(calls);

        Assert.Equal(200, replies.Length);
    }

    private static ForwardRequest TaskExitEvent(string containerId, int attempt)
    {
        var now = Timestamp.FromDateTime(DateTime.UtcNow);
        var exit = new TaskExit { ContainerId = containerId, Id = containerId, Pid = (uint)(1000 + attempt), ExitStatus = 7, ExitedAt = now };
        return new ForwardRequest
        {
            Envelope = new Envelope
            {
                Timestamp = now,
                Namespace = "diffkeeper-test",
                Topic = "/tasks/exit",
                // containerd names event types without the type.googleapis.com/ prefix.
                Event = new Any { TypeUrl = "containerd.events.TaskExit", Value = exit.ToByteString() },
            },
        };
    }

    private static (string Containerd, string Ctr) RequireContainerd()
    {
        Integration.RequireRoot("root");
        var containerd = Integration.FindOnPath("containerd");
        var ctr = Integration.FindOnPath("ctr");
        Integration.Require(containerd is not null && ctr is not null, "containerd and ctr on PATH");
        return (containerd!, ctr!);
    }
}
