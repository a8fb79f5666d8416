using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Protos.Events;
using Google.Protobuf;
using Xunit;

namespace DiffKeeper.Shim.Tests.Events;

/// <summary>
/// The publisher against a real ttrpc server playing containerd's events service: order, envelope contents,
/// and delivery across an events service that is down or failing.
/// </summary>
public class EventPublisherTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Forwards_with_bare_type_url_namespace_and_metadata()
    {
        using var dir = new TempDir("dks-");
        await using var containerd = RecordingEventsService.Listen(dir.Sub("ev.sock"));
        await using var publisher = new EventPublisher(containerd.SocketPath, "ns-a");
        var exit = new TaskExit { ContainerId = "c1", Id = "c1", Pid = 42, ExitStatus = 137 };
        var before = DateTime.UtcNow;

        publisher.Publish(EventTopics.TaskExit, exit);

        var got = Assert.Single(containerd.WaitFor(1, Patience));
        Assert.Equal("/tasks/exit", got.Topic);
        Assert.Equal("ns-a", got.Namespace);
        Assert.Equal("containerd.events.TaskExit", got.Event.TypeUrl);
        Assert.Equal(exit, TaskExit.Parser.ParseFrom(got.Event.Value));
        Assert.InRange(got.Timestamp.ToDateTime(), before.AddSeconds(-1), DateTime.UtcNow.AddSeconds(1));
        Assert.Contains(new KeyValuePair<string, string>("containerd-namespace-ttrpc", "ns-a"), containerd.Metadata[0]);
    }

    [Fact]
    public async Task Keeps_publishing_order()
    {
        using var dir = new TempDir("dks-");
        await using var containerd = RecordingEventsService.Listen(dir.Sub("ev.sock"));
        await using var publisher = new EventPublisher(containerd.SocketPath, "ns-b");
        var sent = Lifecycle("c2", execs: 20);

        foreach (var (topic, evt) in sent) publisher.Publish(topic, evt);

        var got = containerd.WaitFor(sent.Count, Patience);
        Assert.Equal(sent.Select(s => s.Topic), got.Select(e => e.Topic));
        Assert.Equal(sent.Select(s => s.Event.ToByteString()), got.Select(e => e.Event.Value));
    }

    [Fact]
    public async Task Delivers_in_order_once_the_events_service_comes_up()
    {
        using var dir = new TempDir("dks-");
        var path = dir.Sub("ev.sock");
        await using var publisher = new EventPublisher(path, "ns-c");
        var sent = Lifecycle("c3", execs: 2);
        foreach (var (topic, evt) in sent) publisher.Publish(topic, evt);

        await Task.Delay(700); // containerd is down (restarting): nothing listens yet
        await using var containerd = RecordingEventsService.Listen(path);

        var got = containerd.WaitFor(sent.Count, Patience);
        Assert.Equal(sent.Select(s => s.Topic), got.Select(e => e.Topic));
    }

    [Fact]
    public async Task Retries_a_failed_forward_without_reordering()
    {
        using var dir = new TempDir("dks-");
        await using var containerd = RecordingEventsService.Listen(dir.Sub("ev.sock"));
        containerd.FailNext(2);
        await using var publisher = new EventPublisher(containerd.SocketPath, "ns-d");
        var sent = Lifecycle("c4", execs: 1);

        foreach (var (topic, evt) in sent) publisher.Publish(topic, evt);

        var got = containerd.WaitFor(sent.Count, Patience);
        Assert.Equal(sent.Select(s => s.Topic), got.Select(e => e.Topic));
        await Task.Delay(200);
        Assert.Equal(sent.Count, containerd.Envelopes.Count); // each delivered once
    }

    [Fact]
    public async Task Flush_waits_for_queued_events()
    {
        using var dir = new TempDir("dks-");
        await using var containerd = RecordingEventsService.Listen(dir.Sub("ev.sock"));
        await using var publisher = new EventPublisher(containerd.SocketPath, "ns-e");
        for (int i = 0; i < 50; i++) publisher.Publish(EventTopics.TaskOOM, new TaskOOM { ContainerId = $"c{i}" });

        await publisher.FlushAsync(Patience);

        Assert.Equal(50, containerd.Envelopes.Count);
    }

    [Fact]
    public async Task Without_an_address_events_are_dropped_and_flush_returns()
    {
        await using var publisher = new EventPublisher(null, "ns-f");
        publisher.Publish(EventTopics.TaskOOM, new TaskOOM { ContainerId = "c" });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await publisher.FlushAsync(TimeSpan.FromSeconds(5));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"flush took {clock.Elapsed}");
    }

    /// <summary>A container's events in the order containerd requires: execs exit before init, OOM before exit.</summary>
    private static List<(string Topic, IMessage Event)> Lifecycle(string id, int execs)
    {
        var events = new List<(string, IMessage)>
        {
            (EventTopics.TaskCreate, new TaskCreate { ContainerId = id, Bundle = "/b/" + id, Pid = 10 }),
            (EventTopics.TaskStart, new TaskStart { ContainerId = id, Pid = 10 }),
        };
        for (int i = 0; i < execs; i++)
        {
            events.Add((EventTopics.TaskExecAdded, new TaskExecAdded { ContainerId = id, ExecId = $"e{i}" }));
            events.Add((EventTopics.TaskExecStarted, new TaskExecStarted { ContainerId = id, ExecId = $"e{i}", Pid = (uint)(20 + i) }));
        }
        for (int i = 0; i < execs; i++)
            events.Add((EventTopics.TaskExit, new TaskExit { ContainerId = id, Id = $"e{i}", Pid = (uint)(20 + i), ExitStatus = 137 }));
        events.Add((EventTopics.TaskOOM, new TaskOOM { ContainerId = id }));
        events.Add((EventTopics.TaskExit, new TaskExit { ContainerId = id, Id = id, Pid = 10, ExitStatus = 137 }));
        events.Add((EventTopics.TaskDelete, new TaskDelete { ContainerId = id, Pid = 10, ExitStatus = 137 }));
        return events;
    }
}
