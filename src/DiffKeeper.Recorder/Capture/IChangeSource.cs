using DiffKeeper.Bpf;

namespace DiffKeeper.Recorder.Capture;

/// <summary>
/// What the frame loop needs of the kernel change capture (DiffKeeper.Bpf.ChangeCapture has exactly these
/// members): a dirty set keyed by inode, filled in the writer's context for the tracked mount namespaces, drained
/// once per frame. An interface so the daemon still runs (and says so) where the eBPF programs cannot load.
/// </summary>
internal interface IChangeSource : IDisposable
{
    /// <summary>Loaded and usable (the programs attach with the first tracked namespace and detach a linger after
    /// the last, see <see cref="DetachIfIdle"/>).</summary>
    bool Available { get; }
    /// <summary>Why live capture is not available (null when it is).</summary>
    string? UnavailableReason { get; }
    void Track(ulong mountNamespace, uint slot);
    /// <summary>The upper directory's file system sets ctime without the multigrain tracepoints: hook that path too.</summary>
    void RequireCtimeSetHook();
    void Untrack(ulong mountNamespace);
    /// <summary>A recorded command's cgroup v2 id (`diffkeeper record`); with <paramref name="watched"/>, its changes
    /// outside that tree are dropped in the kernel.</summary>
    void TrackCgroup(ulong cgroupId, uint slot, WatchedTree? watched);
    void UntrackCgroup(ulong cgroupId);
    bool Attached { get; }
    /// <summary>Detaches the programs once nothing has been tracked for the capture's linger (see
    /// ChangeCapture.DetachLinger); called by the frame loop.</summary>
    void DetachIfIdle();
    /// <summary>Moves every dirty inode recorded since the last call into <paramref name="into"/>; returns the count.</summary>
    int Drain(List<DirtyInode> into);
    CaptureCounters Counters { get; }
}

/// <summary>No kernel capture (the eBPF object could not be loaded): containers are still recorded at exit, with a gap saying why.</summary>
internal sealed class NoChangeSource(string reason) : IChangeSource
{
    public bool Available => false;
    public string? UnavailableReason { get; } = reason;
    public void Track(ulong mountNamespace, uint slot) { }
    public void RequireCtimeSetHook() { }
    public void Untrack(ulong mountNamespace) { }
    public void TrackCgroup(ulong cgroupId, uint slot, WatchedTree? watched) { }
    public void UntrackCgroup(ulong cgroupId) { }
    public bool Attached => false;
    public void DetachIfIdle() { }
    public int Drain(List<DirtyInode> into) => 0;
    public CaptureCounters Counters => default;
    public void Dispose() { }
}

/// <summary>The real thing: DiffKeeper.Bpf's ChangeCapture (the eBPF programs of bpf/diffkeeper.bpf.o).</summary>
internal sealed class BpfChangeSource(ChangeCapture capture) : IChangeSource
{
    public bool Available => true;
    public string? UnavailableReason => null;
    public void Track(ulong mountNamespace, uint slot) => capture.Track(mountNamespace, slot);
    public void RequireCtimeSetHook() => capture.RequireCtimeSetHook();
    public void Untrack(ulong mountNamespace) => capture.Untrack(mountNamespace);
    public void TrackCgroup(ulong cgroupId, uint slot, WatchedTree? watched) => capture.TrackCgroup(cgroupId, slot, watched);
    public void UntrackCgroup(ulong cgroupId) => capture.UntrackCgroup(cgroupId);
    public bool Attached => capture.Attached;
    public void DetachIfIdle() => capture.DetachIfIdle();
    public int Drain(List<DirtyInode> into) => capture.Drain(into);
    public CaptureCounters Counters => capture.Counters;
    public void Dispose() => capture.Dispose();
}
