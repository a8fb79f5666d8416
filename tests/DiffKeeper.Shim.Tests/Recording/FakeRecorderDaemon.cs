using System.Net.Sockets;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Shim.Tests.Recording;

/// <summary>
/// Plays diffkeeperd's side of the recorder API (<c>diffkeeper.recorder.v1.Recorder</c>) on a unix socket with the
/// real ttrpc server, recording every request; or, <see cref="Hung"/>, a daemon that accepts connections and never
/// reads or answers (a wedged process) — what the shim must survive without stalling a container.
/// </summary>
internal sealed class FakeRecorderDaemon : IAsyncDisposable
{
    private const string Service = "diffkeeper.recorder.v1.Recorder";
    private readonly TtrpcServer? _server;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private readonly List<Socket> _held = new();

    public List<TrackRequest> Tracks { get; } = new();
    public List<LifecycleRequest> Lifecycles { get; } = new();
    public List<ExitedRequest> Exiteds { get; } = new();
    public TrackResponse TrackReply { get; set; } = new() { Recording = true };

    private FakeRecorderDaemon(string socketPath, bool hung)
    {
        SocketPath = socketPath;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(512);
        if (hung)
        {
            _serving = HoldConnectionsAsync();
            return;
        }
        _server = new TtrpcServer();
        _server.Register<TrackRequest, TrackResponse>(Service, "Track", TrackRequest.Parser, (r, _) =>
        {
            lock (Tracks) Tracks.Add(r);
            return ValueTask.FromResult(TrackReply);
        });
        _server.Register<LifecycleRequest, LifecycleResponse>(Service, "Lifecycle", LifecycleRequest.Parser, (r, _) =>
        {
            lock (Lifecycles) Lifecycles.Add(r);
            return ValueTask.FromResult(new LifecycleResponse());
        });
        _server.Register<ExitedRequest, ExitedResponse>(Service, "Exited", ExitedRequest.Parser, (r, _) =>
        {
            lock (Exiteds) Exiteds.Add(r);
            return ValueTask.FromResult(new ExitedResponse());
        });
        _serving = _server.ServeAsync(_listener, _stop.Token);
    }

    public string SocketPath { get; }

    public static FakeRecorderDaemon Serve(string socketPath) => new(socketPath, hung: false);
    public static FakeRecorderDaemon Hung(string socketPath) => new(socketPath, hung: true);

    private async Task HoldConnectionsAsync()
    {
        try
        {
            while (true)
            {
                var s = await _listener.AcceptAsync(_stop.Token);
                lock (_held) _held.Add(s);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose(); // also unlinks the socket path
        try { await _serving; } catch (Exception) { }
        if (_server != null) await _server.DisposeAsync();
        lock (_held) foreach (var s in _held) s.Dispose();
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
