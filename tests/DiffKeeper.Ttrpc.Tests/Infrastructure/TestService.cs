using System.Collections.Concurrent;
using DiffKeeper.Ttrpc;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>
/// The methods the test server exposes. Gates let a test hold a call pending and release it at a chosen moment.
/// </summary>
public sealed class TestService
{
    public const string Name = "diffkeeper.test.v1.Test";

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();

    /// <summary>Set when a call's CancellationToken fired, keyed by the StringValue the call carried.</summary>
    public ConcurrentDictionary<string, TaskCompletionSource> Cancelled { get; } = new();

    public void Open(string gate) => Gate(gate).TrySetResult();

    public TaskCompletionSource WasCancelled(string key) =>
        Cancelled.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private TaskCompletionSource Gate(string name) =>
        _gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void RegisterOn(TtrpcServer server)
    {
        server.Register(Name, "Echo", StringValue.Parser,
            (StringValue req, TtrpcCallContext _) => ValueTask.FromResult(new StringValue { Value = req.Value }));

        server.Register(Name, "Empty", Empty.Parser,
            (Empty _, TtrpcCallContext _) => ValueTask.FromResult(new Empty()));

        // Waits until the test opens the gate named by the request; answers with the gate name.
        server.Register(Name, "WaitGate", StringValue.Parser, async (StringValue req, TtrpcCallContext ctx) =>
        {
            await Gate(req.Value).Task.WaitAsync(ctx.CancellationToken);
            return new StringValue { Value = req.Value };
        });

        // Blocks its thread (no await) until the gate opens: must not stall the connection's reader.
        server.Register(Name, "BlockGate", StringValue.Parser, (StringValue req, TtrpcCallContext _) =>
        {
            Gate(req.Value).Task.Wait(TimeSpan.FromSeconds(30));
            return ValueTask.FromResult(new StringValue { Value = req.Value });
        });

        server.Register<StringValue, Empty>(Name, "Throw", StringValue.Parser,
            (StringValue req, TtrpcCallContext _) => throw new InvalidOperationException(req.Value));

        server.Register<Int32Value, Empty>(Name, "Status", Int32Value.Parser, (Int32Value req, TtrpcCallContext _) =>
            throw new TtrpcException((TtrpcStatusCode)req.Value, $"chosen status {req.Value}"));

        // Answers "key=value;..." in arrival order.
        server.Register(Name, "Metadata", Empty.Parser, (Empty _, TtrpcCallContext ctx) =>
            ValueTask.FromResult(new StringValue { Value = string.Join(";", ctx.Metadata.Select(kv => $"{kv.Key}={kv.Value}")) }));

        // Reports the deadline the server saw, in milliseconds (-1 = none).
        server.Register(Name, "Timeout", Empty.Parser, (Empty _, TtrpcCallContext ctx) =>
            ValueTask.FromResult(new Int64Value { Value = ctx.Timeout is { } t ? (long)t.TotalMilliseconds : -1 }));

        // Sleeps until cancelled and records the cancellation under the request's value.
        server.Register(Name, "SleepUntilCancelled", StringValue.Parser, async (StringValue req, TtrpcCallContext ctx) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                WasCancelled(req.Value).TrySetResult();
                throw;
            }
            return new StringValue();
        });

        // Ignores its token and sleeps for the requested milliseconds.
        server.Register(Name, "SleepIgnoringToken", Int32Value.Parser, async (Int32Value req, TtrpcCallContext _) =>
        {
            await Task.Delay(req.Value);
            return new Empty();
        });

        // Answers a message of the requested size (for the response size limit).
        server.Register(Name, "Big", Int32Value.Parser, (Int32Value req, TtrpcCallContext _) =>
            ValueTask.FromResult(new BytesValue { Value = Google.Protobuf.ByteString.CopyFrom(new byte[req.Value]) }));
    }
}
