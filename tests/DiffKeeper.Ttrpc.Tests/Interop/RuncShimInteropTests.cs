using System.Collections.Concurrent;
using System.Net.Sockets;
using DiffKeeper.Ttrpc.Tests.Infrastructure;
using DiffKeeper.Ttrpc.Tests.Interop.Protos;
using Google.Protobuf.WellKnownTypes;
using Xunit.Abstractions;

namespace DiffKeeper.Ttrpc.Tests.Interop;

/// <summary>
/// Both directions against containerd's Go ttrpc, through the stock containerd-shim-runc-v2: our client drives its
/// Task service (Go server), and our server receives the events its publisher sends (Go client).
/// </summary>
public class RuncShimInteropTests(ITestOutputHelper output)
{
    private const string TaskService = "containerd.task.v2.Task";
    private const string EventsService = "containerd.services.events.ttrpc.v1.Events";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [SkippableFact]
    public async Task Runc_shim_task_lifecycle_over_our_client_and_its_events_into_our_server()
    {
        Integration.RequireRoot("root");
        var shimBinary = Integration.FindOnPath("containerd-shim-runc-v2");
        var runc = Integration.FindOnPath("runc");
        var busybox = Integration.FindOnPath("busybox");
        Integration.Require(shimBinary is not null && runc is not null && busybox is not null,
            "containerd-shim-runc-v2, runc and busybox on PATH");

        using var harness = RuncShimHarness.Create();
        var events = new EventsRecorder();
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(harness.EventsSocket));
        listener.Listen(8);
        await using var eventsServer = new TtrpcServer();
        eventsServer.Register<ForwardRequest, Empty>(EventsService, "Forward", ForwardRequest.Parser, (request, context) =>
        {
            events.Record(request.Envelope, context);
            return ValueTask.FromResult(new Empty());
        });
        using var stopEvents = new CancellationTokenSource();
        var serving = eventsServer.ServeAsync(listener, stopEvents.Token);

        harness.PrepareBundle(runc!, busybox!);
        harness.StartShim(shimBinary!);
        output.WriteLine($"shim address: {harness.ShimAddress}");
        await using var shim = await TtrpcClient.ConnectAsync(harness.ShimAddress);
        var connect = await shim.CallAsync(TaskService, "Connect", new ConnectRequest { Id = harness.Id }, ConnectResponse.Parser);
        harness.RememberShimPid(connect.ShimPid);

        var created = await shim.CallAsync(TaskService, "Create",
            new CreateTaskRequest { Id = harness.Id, Bundle = harness.Bundle }, CreateTaskResponse.Parser, timeout: Patience);
        var started = await shim.CallAsync(TaskService, "Start", new StartRequest { Id = harness.Id }, StartResponse.Parser);
        Assert.True(created.Pid > 0);
        Assert.Equal(created.Pid, started.Pid);

        // Wait stays pending on the Go server while pipelined State calls are answered around it.
        var wait = shim.CallAsync(TaskService, "Wait", new WaitRequest { Id = harness.Id }, WaitResponse.Parser);
        var states = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ =>
            shim.CallAsync(TaskService, "State", new StateRequest { Id = harness.Id }, StateResponse.Parser, timeout: TimeSpan.FromSeconds(2))));
        Assert.All(states, s => Assert.Equal(2, s.Status)); // RUNNING
        Assert.False(wait.IsCompleted);

        var missing = await Assert.ThrowsAsync<TtrpcException>(() =>
            shim.CallAsync(TaskService, "State", new StateRequest { Id = "no-such-container" }, StateResponse.Parser));
        output.WriteLine($"State(no-such-container): {missing.Code}: {missing.Message}");
        Assert.Equal(TtrpcStatusCode.NotFound, missing.Code);

        await shim.CallAsync(TaskService, "Kill", new KillRequest { Id = harness.Id, Signal = 9 }, Empty.Parser);
        var exited = await wait.WaitAsync(Patience);
        var deleted = await shim.CallAsync(TaskService, "Delete", new DeleteRequest { Id = harness.Id }, DeleteResponse.Parser);
        Assert.Equal(137u, exited.ExitStatus);
        Assert.Equal(137u, deleted.ExitStatus);

        // The shim's Go ttrpc client delivered its events to our server.
        foreach (var topic in new[] { "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete" })
        {
            var envelope = await events.WaitForAsync(topic).WaitAsync(Patience);
            Assert.Equal(harness.Namespace, envelope.Namespace);
        }
        output.WriteLine($"events received: {string.Join(", ", events.Log)}");

        await shim.CallAsync(TaskService, "Shutdown", new ShutdownRequest { Id = harness.Id }, Empty.Parser)
            .ContinueWith(_ => { }, TaskScheduler.Default); // the shim may exit before its reply is read
        stopEvents.Cancel();
        await serving;
    }

    private sealed class EventsRecorder
    {
        private readonly ConcurrentDictionary<string, TaskCompletionSource<Envelope>> _byTopic = new();
        public ConcurrentQueue<string> Log { get; } = new();

        public void Record(Envelope envelope, TtrpcCallContext context)
        {
            var metadata = string.Join(",", context.Metadata.Select(kv => $"{kv.Key}={kv.Value}"));
            Log.Enqueue($"{envelope.Topic} ns={envelope.Namespace} type={envelope.Event?.TypeUrl} timeout={context.Timeout} md=[{metadata}]");
            Waiter(envelope.Topic).TrySetResult(envelope);
        }

        public Task<Envelope> WaitForAsync(string topic) => Waiter(topic).Task;

        private TaskCompletionSource<Envelope> Waiter(string topic) =>
            _byTopic.GetOrAdd(topic, _ => new TaskCompletionSource<Envelope>(TaskCreationOptions.RunContinuationsAsynchronously));
    }
}
