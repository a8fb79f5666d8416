using System.Threading.Channels;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Protos.EventsService;
using DiffKeeper.Ttrpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Events;

/// <summary>
/// Forwards task events to containerd over ttrpc (<c>$TTRPC_ADDRESS</c>, Events.Forward) from one ordered queue:
/// events leave in the order they were published. A failed forward (containerd restarting) reconnects and retries
/// the same event with growing delays before giving up on it, so order is kept across a restart.
/// </summary>
internal sealed class EventPublisher : IEventSink, IAsyncDisposable
{
    private const string Service = "containerd.services.events.ttrpc.v1.Events";
    private const int MaxAttempts = 40; // ≈ 1 minute with the capped back-off below
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(5);

    private readonly string? _address;
    private readonly string _namespace;
    private readonly Channel<Envelope> _queue = Channel.CreateUnbounded<Envelope>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();
    private int _pending;
    private TtrpcClient? _client;

    public EventPublisher(string? address, string ns)
    {
        _address = string.IsNullOrEmpty(address) ? null : address;
        _namespace = ns;
        _loop = Task.Run(RunAsync);
    }

    public void Publish(string topic, IMessage evt)
    {
        var envelope = new Envelope
        {
            Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
            Namespace = _namespace,
            Topic = topic,
            Event = TypeUrls.PackBare(evt),
        };
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(envelope)) Interlocked.Decrement(ref _pending);
        ShimLog.Trace($"event {topic} {evt}");
    }

    /// <summary>Waits (bounded) until every published event was forwarded or given up.</summary>
    public async Task FlushAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Volatile.Read(ref _pending) > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20).ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var metadata = new[] { new KeyValuePair<string, string>("containerd-namespace-ttrpc", _namespace) };
        try
        {
            await foreach (var envelope in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    if (_address != null) await ForwardAsync(envelope, metadata).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _pending);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task ForwardAsync(Envelope envelope, KeyValuePair<string, string>[] metadata)
    {
        var request = new ForwardRequest { Envelope = envelope };
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                _client ??= await TtrpcClient.ConnectAsync(_address!, _stop.Token).ConfigureAwait(false);
                await _client.CallAsync(Service, "Forward", request, Empty.Parser, metadata, ForwardTimeout, _stop.Token)
                    .ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                if (_client != null)
                {
                    try { await _client.DisposeAsync().ConfigureAwait(false); } catch { }
                    _client = null;
                }
                if (attempt >= MaxAttempts)
                {
                    ShimLog.Error($"dropping event {envelope.Topic} after {attempt} attempts: {e.Message}");
                    return;
                }
                var delay = TimeSpan.FromMilliseconds(Math.Min(100 * (1 << Math.Min(attempt, 5)), 2000));
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _stop.Cancel();
        try { await _loop.ConfigureAwait(false); } catch { }
        if (_client != null) await _client.DisposeAsync().ConfigureAwait(false);
    }
}
