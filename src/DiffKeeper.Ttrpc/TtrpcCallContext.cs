namespace DiffKeeper.Ttrpc;

/// <summary>What a server handler knows about the call it is serving.</summary>
public sealed class TtrpcCallContext
{
    /// <summary>Public so handlers can be unit-tested without a socket.</summary>
    public TtrpcCallContext(string service, string method, IReadOnlyList<KeyValuePair<string, string>> metadata,
        TimeSpan? timeout, CancellationToken cancellationToken, CancellationToken connectionClosed = default)
    {
        Service = service;
        Method = method;
        Metadata = metadata;
        Timeout = timeout;
        CancellationToken = cancellationToken;
        ConnectionClosed = connectionClosed;
    }

    public string Service { get; }
    public string Method { get; }

    /// <summary>Request metadata in arrival order; a key may repeat (ttrpc sends one KeyValue per value).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; }

    /// <summary>The client's deadline (timeout_nano), if it sent one.</summary>
    public TimeSpan? Timeout { get; }

    /// <summary>Cancelled when the timeout expires, the connection closes or the server is disposed.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Cancelled when the connection the call came on closes (the peer went away, or the server is disposed),
    /// also long after the call returned: a server that keeps state for a client (a session it started) learns here
    /// that the client is gone, even when it was killed without a word.</summary>
    public CancellationToken ConnectionClosed { get; }
}
