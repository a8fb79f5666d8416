namespace DiffKeeper.Recorder.Capture;

/// <summary>
/// What the frame loop needs of the kernel change capture (DiffKeeper.Bpf.ChangeCapture has exactly these
/// members): a dirty set keyed by inode, filled in the writer's context for the tracked mount namespaces, drained
/// once per frame. An interface so the daemon still runs (and says so) where the eBPF programs cannot load.
/// </summary>
internal interface IChangeSource : IDisposable
{
    void Track(ulong mountNamespace, uint slot);
    void Untrack(ulong mountNamespace);
    bool Attached { get; }
    /// <summary>Moves every dirty inode recorded since the last call into <paramref name="into"/>; returns the count.</summary>
    int Drain(List<DirtyInode> into);
    CaptureCounters Counters { get; }
}

[Flags]
internal enum ChangeKinds : byte { Data = 1, Meta = 2, Directory = 4 }

/// <param name="Dev">user-space st_dev of the inode's file system (the overlay's upper fs).</param>
/// <param name="Slot">the container slot given to Track.</param>
/// <param name="Merged">how many kernel events were folded into this one entry.</param>
internal readonly record struct DirtyInode(ulong Dev, ulong Ino, uint Slot, ChangeKinds Kinds,
    long FirstRealtimeNs, long LastRealtimeNs, int Pid, string Comm, uint Merged);

internal readonly record struct CaptureCounters(ulong Events, ulong Merged, ulong Lost);

/// <summary>No kernel capture (the eBPF object could not be loaded): containers are still recorded at exit, with a gap saying why.</summary>
internal sealed class NoChangeSource(string reason) : IChangeSource
{
    public string Reason { get; } = reason;
    public void Track(ulong mountNamespace, uint slot) { }
    public void Untrack(ulong mountNamespace) { }
    public bool Attached => false;
    public int Drain(List<DirtyInode> into) => 0;
    public CaptureCounters Counters => default;
    public void Dispose() { }
}
