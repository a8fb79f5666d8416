using System.Net.Sockets;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Ttrpc;
using Google.Protobuf;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// The shim's ttrpc connection to diffkeeperd (service <c>diffkeeper.recorder.v1.Recorder</c>). Lazy: nothing is
/// dialled until the first call (never in <c>start</c>). Every call, dial included, ends within its time-out; a
/// missing socket or a refused connection ends it at once (the daemon is absent: no waiting). A connection that
/// failed or timed out is dropped, so the next call dials again and finds a restarted daemon.
/// </summary>
internal sealed class RecorderClient(string socketPath) : IAsyncDisposable
{
    public const string Service = "diffkeeper.recorder.v1.Recorder";

    private readonly SemaphoreSlim _dialGate = new(1, 1);
    private TtrpcClient? _client;

    public string SocketPath => socketPath;

    /// <summary>
    /// The reply; null when there is no daemon (no socket, connection refused) — the common case on a node without
    /// the recorder, answered without an exception (an exception's first throw costs the one-per-container shim
    /// resident pages); a TtrpcException (DeadlineExceeded, Unavailable, the daemon's own status) otherwise.
    /// </summary>
    public async Task<TResp?> CallAsync<TReq, TResp>(string method, TReq request, MessageParser<TResp> parser, TimeSpan timeout,
        CancellationToken ct = default)
        where TReq : IMessage<TReq> where TResp : class, IMessage<TResp>
    {
        // No socket file: the daemon is not installed or not running. Nothing to wait for.
        if (_client is not { IsConnected: true } && !File.Exists(socketPath)) return null;
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        TtrpcClient? client;
        try
        {
            client = await GetClientAsync(cts.Token).ConfigureAwait(false);
            if (client == null) return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TtrpcException(TtrpcStatusCode.DeadlineExceeded, $"{method}: no connection to {socketPath} within {timeout.TotalMilliseconds} ms");
        }
        var remaining = TimeSpan.FromMilliseconds(Math.Max(1, deadline - Environment.TickCount64));
        try
        {
            return await client.CallAsync(Service, method, request, parser, null, remaining, cts.Token).ConfigureAwait(false);
        }
        catch (TtrpcException e) when (e.Code is TtrpcStatusCode.DeadlineExceeded or TtrpcStatusCode.Unavailable)
        {
            await DropAsync(client).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await DropAsync(client).ConfigureAwait(false);
            throw new TtrpcException(TtrpcStatusCode.DeadlineExceeded, $"{method}: no reply within {timeout.TotalMilliseconds} ms");
        }
    }

    private async Task<TtrpcClient?> GetClientAsync(CancellationToken ct)
    {
        if (_client is { IsConnected: true } live) return live;
        await _dialGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_client is { IsConnected: true } again) return again;
            if (_client != null) { await _client.DisposeAsync().ConfigureAwait(false); _client = null; }
            if (!File.Exists(socketPath)) return null;
            try
            {
                _client = await TtrpcClient.ConnectAsync(socketPath, ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                // ECONNREFUSED (a stale socket file: the daemon died) and friends fail at once.
                ShimLog.Trace($"recorder: connect {socketPath}: {e.Message}");
                return null;
            }
            ShimLog.Trace($"recorder: connected to {socketPath}");
            return _client;
        }
        finally
        {
            _dialGate.Release();
        }
    }

    private async Task DropAsync(TtrpcClient client)
    {
        if (Interlocked.CompareExchange(ref _client, null, client) != client) return;
        try { await client.DisposeAsync().ConfigureAwait(false); } catch (Exception) { /* already broken */ }
    }

    public async ValueTask DisposeAsync()
    {
        var client = Interlocked.Exchange(ref _client, null);
        if (client != null) await client.DisposeAsync().ConfigureAwait(false);
    }
}
