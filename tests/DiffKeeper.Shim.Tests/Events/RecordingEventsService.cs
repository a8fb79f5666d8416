using System.Net.Sockets;
using DiffKeeper.Shim.Protos.EventsService;
using DiffKeeper.Ttrpc;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Tests.Events;

/// <summary>
/// Plays containerd's events service (<c>containerd.services.events.ttrpc.v1.Events/Forward</c>) on a unix socket
/// and records what arrives, in arrival order, with the request metadata.
/// </summary>
internal sealed class RecordingEventsService : IAsyncDisposable
{
    public const string Service = "containerd.services.events.ttrpc.v1.Events";
    private readonly object _gate = new();
    private readonly List<(Envelope Envelope, IReadOnlyList<KeyValuePair<string, string>> Metadata)> _received = new();
    private readonly TtrpcServer _server = new();
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private int _failuresToInject;
    private bool _hang;

    private RecordingEventsService(string socketPath)
    {
        SocketPath = socketPath;
        _server.Register<ForwardRequest, Empty>(Service, "Forward", ForwardRequest.Parser, async (request, ctx) =>
        {
            if (Volatile.Read(ref _hang))
            {
                // A wedged containerd: accept the call, never answer (until the caller's deadline or our disposal).
                try { await Task.Delay(Timeout.Infinite, ctx.CancellationToken); } catch (OperationCanceledException) { }
                throw new TtrpcException(TtrpcStatusCode.Unavailable, "hung");
            }
            if (Interlocked.Decrement(ref _failuresToInject) >= 0)
                throw new TtrpcException(TtrpcStatusCode.Unavailable, "injected failure");
            lock (_gate)
            {
                _received.Add((request.Envelope, ctx.Metadata.ToArray()));
                Monitor.PulseAll(_gate);
            }
            return new Empty();
        });
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(16);
        _serving = _server.ServeAsync(_listener, _stop.Token);
    }

    public string SocketPath { get; }

    public static RecordingEventsService Listen(string socketPath) => new(socketPath);

    /// <summary>The next <paramref name="count"/> Forward calls fail with Unavailable (containerd hiccup).</summary>
    public void FailNext(int count) => Volatile.Write(ref _failuresToInject, count);

    /// <summary>From now on every Forward hangs without an answer.</summary>
    public void HangForwards() => Volatile.Write(ref _hang, true);

    public IReadOnlyList<Envelope> Envelopes
    {
        get { lock (_gate) return _received.Select(r => r.Envelope).ToArray(); }
    }

    public IReadOnlyList<IReadOnlyList<KeyValuePair<string, string>>> Metadata
    {
        get { lock (_gate) return _received.Select(r => r.Metadata).ToArray(); }
    }

    /// <summary>Waits until at least <paramref name="count"/> events arrived; returns them (or fewer on timeout).</summary>
    public IReadOnlyList<Envelope> WaitFor(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (_received.Count < count)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) break;
                Monitor.Wait(_gate, left);
            }
            return _received.Select(r => r.Envelope).ToArray();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _server.DisposeAsync();
        try { await _serving; } catch { }
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
