using DiffKeeper.Ttrpc.Framing;

namespace DiffKeeper.Ttrpc;

public sealed class TtrpcServerOptions
{
    /// <summary>Largest frame payload accepted or sent. Bigger requests are skipped and answered ResourceExhausted.</summary>
    public int MaxMessageSize { get; init; } = TtrpcFrame.DefaultMaxMessageSize;

    /// <summary>
    /// A frame claiming more than this is not skipped but taken as garbage (no ttrpc peer sends it), and the
    /// connection is closed instead of reading gigabytes that may never come.
    /// </summary>
    public long MaxSkippableSize { get; init; } = 64L << 20;

    /// <summary>
    /// A frame whose first byte has arrived must be complete within this time, or the connection is closed
    /// (a half frame followed by silence). Null disables the check; idle connections are never affected.
    /// </summary>
    public TimeSpan? IncompleteFrameTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Calls one connection may have in flight (running or waiting for their reply to be written). At the limit the
    /// connection's read loop stops reading, so a peer that sends without reading replies is pushed back by the
    /// socket instead of growing our memory. containerd needs a handful (one Wait per process plus a few calls).
    /// </summary>
    public int MaxConcurrentCallsPerConnection { get; init; } = 1024;

    /// <summary>How long DisposeAsync lets calls in flight finish (and their replies go out) before closing.</summary>
    public TimeSpan ShutdownGracePeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Accept only peers whose effective uid and gid (SO_PEERCRED) equal this process's, as containerd's runc shim
    /// does. Others are disconnected before a single frame is read.
    /// </summary>
    public bool RequireSameUser { get; init; }

    /// <summary>Diagnostics: protocol errors, closed connections, handler failures. Null = silent.</summary>
    public Action<string>? Log { get; init; }
}
