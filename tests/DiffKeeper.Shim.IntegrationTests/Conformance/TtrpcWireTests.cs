using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using DiffKeeper.Shim.IntegrationTests.Wire;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>
/// Checklist item 32, on the wire. Events: the shim's TTRPC_ADDRESS is pointed at a decoding proxy in front of
/// containerd's ttrpc socket. Task API: a raw ttrpc client talks to the shim's own socket next to containerd.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class TtrpcWireTests(ContainerdFixture fixture) : ChecklistTest(fixture)
{
    private const string TaskService = "containerd.task.v2.Task";

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item32a_EventForwards_OddStreamIds_NamespaceMetadata_BareTypeUrls(string runtime)
    {
        Fx.Require(runtime);
        var id = NewId("i32", runtime, "ev");
        using var proxy = new TtrpcSniffProxy(Path.Combine(Fx.Root, "p32" + ShimRuntimes.Tag(runtime) + ".sock"), Containerd.TtrpcAddress);
        var redirect = Path.Combine(Fx.Shims.RedirectDir, id);
        File.WriteAllText(redirect, proxy.ListenPath);
        try
        {
            AssertExit(await Ctr("run", "--rm", "--runtime", runtime, Image, id, "sh", "-c", "exit 0"), 0);
            // The events still reach containerd through the proxy.
            await Events.WaitForAsync(id, "/tasks/delete");
        }
        finally { File.Delete(redirect); }

        var frames = proxy.Frames;
        Assert.Empty(proxy.Errors);
        var requests = frames.Where(f => f.Direction == SniffDirection.ClientToServer).ToList();
        var responses = frames.Where(f => f.Direction == SniffDirection.ServerToClient).ToList();
        Assert.True(requests.Count >= 4, $"expected at least 4 Forward calls, saw {requests.Count}");

        var envelopes = new List<(string Topic, string Namespace, string TypeUrl)>();
        foreach (var f in requests)
        {
            Assert.Equal(TtrpcFrame.Request, f.Frame.Type);
            Assert.True(f.Frame.StreamId % 2 == 1, $"client stream ids must be odd, saw {f.Frame.StreamId}");
            var req = TtrpcRequest.Decode(f.Frame.Payload);
            Assert.Equal("containerd.services.events.ttrpc.v1.Events", req.Service);
            Assert.Equal("Forward", req.Method);
            Assert.Contains(new KeyValuePair<string, string>("containerd-namespace-ttrpc", PrivateContainerd.Namespace), req.Metadata);
            // ForwardRequest{envelope 1}; Envelope{timestamp 1, namespace 2, topic 3, event 4 Any{type_url 1, value 2}}
            var envelope = ProtoReader.Parse(ProtoReader.Parse(req.Payload).First(1)!.Value.Bytes);
            Assert.NotNull(envelope.First(1));
            var any = ProtoReader.Parse(envelope.First(4)!.Value.Bytes);
            envelopes.Add((envelope.First(3)?.String ?? "", envelope.First(2)?.String ?? "", any.First(1)?.String ?? ""));
        }
        // Stream ids of one connection increase: a new call never reuses an id.
        foreach (var conn in requests.GroupBy(r => r.Connection))
        {
            var ids = conn.Select(r => r.Frame.StreamId).ToList();
            Assert.True(ids.SequenceEqual(ids.Distinct().Order()), "stream ids: " + string.Join(",", ids));
        }
        var expected = new Dictionary<string, string>
        {
            ["/tasks/create"] = "containerd.events.TaskCreate", ["/tasks/start"] = "containerd.events.TaskStart",
            ["/tasks/exit"] = "containerd.events.TaskExit", ["/tasks/delete"] = "containerd.events.TaskDelete",
        };
        foreach (var (topic, typeUrl) in expected)
        {
            var e = envelopes.Where(x => x.Topic == topic).ToList();
            Assert.True(e.Count == 1, $"{topic}: forwarded {e.Count} times; all: {string.Join(", ", envelopes)}");
            Assert.Equal(typeUrl, e[0].TypeUrl);
            Assert.Equal(PrivateContainerd.Namespace, e[0].Namespace);
        }
        // containerd answers each Forward with an Empty: a zero-length response on the same stream.
        foreach (var r in responses)
        {
            Assert.Equal(TtrpcFrame.Response, r.Frame.Type);
            Assert.Contains(requests, q => q.Connection == r.Connection && q.Frame.StreamId == r.Frame.StreamId);
        }
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Item32b_TaskApi_PipelinedCallsAnsweredOutOfOrder_EmptyIsZeroLength_EvenIdRejected(string runtime)
    {
        Fx.Require(runtime);
        var id = await RunSleeperAsync("i32", runtime, "api");
        var initPid = (await Fx.TasksAsync())[id].Pid;
        var address = File.ReadAllText(Path.Combine(Containerd.BundleDir(id), "address")).Trim();
        Assert.StartsWith("unix://", address);
        using var client = await RawTtrpcClient.ConnectAsync(address["unix://".Length..]);
        byte[] IdOnly() => new ProtoWriter().String(1, id).ToArray();

        // Wait blocks until init exits; the calls pipelined behind it must still be answered.
        await client.SendAsync(1, TaskService, "Wait", IdOnly());
        await client.SendAsync(3, TaskService, "State", IdOnly());
        await client.SendAsync(5, TaskService, "Pids", IdOnly());
        await client.SendAsync(7, TaskService, "ResizePty", new ProtoWriter().String(1, id).Varint(3, 80).Varint(4, 24).ToArray());
        await client.SendAsync(2, TaskService, "State", IdOnly());
        await client.SendAsync(9, TaskService, "NoSuchMethod", IdOnly());

        var state = TtrpcResponse.Decode((await client.ResponseAsync(3, TimeSpan.FromSeconds(5))).Payload);
        Assert.False(state.HasStatus, $"State failed: {state.StatusCode} {state.StatusMessage}");
        var stateFields = ProtoReader.Parse(state.Payload);
        Assert.Equal(id, stateFields.First(1)?.String);
        Assert.Equal((ulong)initPid, stateFields.First(3)?.Varint);
        Assert.Equal(2ul, stateFields.First(4)?.Varint); // RUNNING

        var pids = TtrpcResponse.Decode((await client.ResponseAsync(5, TimeSpan.FromSeconds(5))).Payload);
        Assert.False(pids.HasStatus, $"Pids failed: {pids.StatusCode} {pids.StatusMessage}");
        Assert.Contains(ProtoReader.Parse(pids.Payload).Where(f => f.Number == 1), p => ProtoReader.Parse(p.Bytes).First(1)?.Varint == (ulong)initPid);

        var resize = await client.ResponseAsync(7, TimeSpan.FromSeconds(5));
        Assert.True(resize.Payload.Length == 0, "an Empty success must be a zero-length response, got " + Convert.ToHexString(resize.Payload));

        var even = TtrpcResponse.Decode((await client.ResponseAsync(2, TimeSpan.FromSeconds(5))).Payload);
        Assert.Equal(3, even.StatusCode); // InvalidArgument

        var unknown = TtrpcResponse.Decode((await client.ResponseAsync(9, TimeSpan.FromSeconds(5))).Payload);
        Assert.Equal(12, unknown.StatusCode); // Unimplemented

        Assert.DoesNotContain(client.Received, f => f.StreamId == 1);

        await client.SendAsync(11, TaskService, "Kill", new ProtoWriter().String(1, id).Varint(3, 9).ToArray());
        var kill = await client.ResponseAsync(11, TimeSpan.FromSeconds(5));
        Assert.True(kill.Payload.Length == 0, "Kill's Empty reply must be zero-length, got " + Convert.ToHexString(kill.Payload));
        var wait = TtrpcResponse.Decode((await client.ResponseAsync(1, TimeSpan.FromSeconds(10))).Payload);
        Assert.False(wait.HasStatus, $"Wait failed: {wait.StatusCode} {wait.StatusMessage}");
        Assert.Equal(137ul, ProtoReader.Parse(wait.Payload).First(1)?.Varint);

        var order = client.Received.Select(f => f.StreamId).ToList();
        Assert.True(order.IndexOf(1) > order.IndexOf(3), "Wait was answered before later calls: " + string.Join(",", order));
        Assert.True(order.All(s => s == 2 || s % 2 == 1), "responses on unexpected streams: " + string.Join(",", order));

        await Fx.WaitForStatusAsync(id, "STOPPED");
        await RemoveTaskAndContainerAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }
}
