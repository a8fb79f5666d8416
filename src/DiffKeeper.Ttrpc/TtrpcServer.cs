using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using DiffKeeper.Ttrpc.Server;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc;

/// <summary>
/// A ttrpc server (the protocol containerd speaks to shims). Register unary methods, then ServeAsync on a bound,
/// listening unix socket. Every call runs concurrently; a connection that sends garbage is closed alone.
/// </summary>
public sealed class TtrpcServer : IAsyncDisposable
{
    private readonly TtrpcServerOptions _options;
    private readonly MethodTable _methods = new();
    private readonly CancellationTokenSource _stopAccepting = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<ServerConnection, Task> _connections = new();
    private int _openConnections;
    private int _nextConnectionId;
    private int _disposed;

    public TtrpcServer(TtrpcServerOptions? options = null)
    {
        _options = options ?? new TtrpcServerOptions();
    }

    /// <summary>Raised after a connection closed, with the number still open. Called on a thread-pool thread.</summary>
    public event Action<int>? ConnectionClosed;

    public int OpenConnections => Volatile.Read(ref _openConnections);

    /// <summary>Registers a unary method; the handler may run concurrently with any other call.</summary>
    public void Register<TReq, TResp>(string service, string method, MessageParser<TReq> parser,
        Func<TReq, TtrpcCallContext, ValueTask<TResp>> handler)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp> =>
        _methods.Add(service, method, parser, handler);

    /// <summary>
    /// Accepts connections until <paramref name="ct"/> is cancelled or the server is disposed. Open connections
    /// keep being served after it returns, until DisposeAsync. The caller keeps ownership of the listener.
    /// </summary>
    public async Task ServeAsync(Socket listener, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        using var accepting = CancellationTokenSource.CreateLinkedTokenSource(ct, _stopAccepting.Token);
        while (!accepting.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(accepting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.InvalidArgument
                                                or SocketError.NotSocket or SocketError.Shutdown)
            {
                break; // the listener was closed under us
            }
            catch (SocketException e) when (!accepting.IsCancellationRequested)
            {
                // E.g. out of file descriptors: keep the server alive and try again shortly.
                Log($"ttrpc server: accept failed: {e.Message}");
                try { await Task.Delay(100, accepting.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
                continue;
            }
            catch (ObjectDisposedException)
            {
                break; // the listener was closed under us
            }
            if (_options.RequireSameUser && !IsSameUser(socket))
            {
                socket.Dispose();
                continue;
            }
            Start(socket);
        }
    }

    private bool IsSameUser(Socket socket)
    {
        try
        {
            var peer = PeerCredentials.Of(socket);
            if (peer.IsSameUserAsThisProcess()) return true;
            Log($"ttrpc server: refused pid {peer.Pid} (uid {peer.Uid}, gid {peer.Gid}): not our user");
        }
        catch (SocketException e)
        {
            Log($"ttrpc server: refused a peer whose credentials are unreadable: {e.Message}");
        }
        return false;
    }

    private void Start(Socket socket)
    {
        var connection = new ServerConnection(Interlocked.Increment(ref _nextConnectionId), socket, _methods, _options, _stopping.Token);
        Interlocked.Increment(ref _openConnections);
        // Registered before the loop starts so DisposeAsync always sees it.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _connections[connection] = done.Task;
        if (_stopping.IsCancellationRequested) connection.Close(); // accepted while disposing
        _ = Task.Run(async () =>
        {
            try
            {
                await connection.RunAsync().ConfigureAwait(false); // never throws, but the bookkeeping must happen
            }
            finally
            {
                _connections.TryRemove(connection, out _);
                connection.Dispose();
                int open = Interlocked.Decrement(ref _openConnections);
                try
                {
                    ConnectionClosed?.Invoke(open);
                }
                catch (Exception e)
                {
                    Log($"ttrpc server: ConnectionClosed handler threw: {e}");
                }
                done.SetResult(); // after the event, so DisposeAsync returns with every close reported
            }
        });
    }

    private void Log(string message)
    {
        try { _options.Log?.Invoke(message); }
        catch { /* a failing log sink must not break the server's bookkeeping */ }
    }

    /// <summary>
    /// Stops accepting, lets calls in flight finish for up to ShutdownGracePeriod so their replies go out
    /// (a Shutdown call answers before the shim exits), then closes every connection.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopAccepting.Cancel();
        var grace = Stopwatch.StartNew();
        while (_connections.Keys.Any(c => c.CallsInFlight > 0) && grace.Elapsed < _options.ShutdownGracePeriod)
            await Task.Delay(10).ConfigureAwait(false);
        _stopping.Cancel();
        foreach (var connection in _connections.Keys) connection.Close();
        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        // The token sources are not disposed: a connection accepted at this very moment may still link to them.
    }
}
