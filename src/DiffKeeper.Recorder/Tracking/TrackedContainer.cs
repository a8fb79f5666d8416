using DiffKeeper.Recorder.Api;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>A container the daemon records live: its recording, its upper tree map and its capture slot.</summary>
internal sealed class TrackedContainer
{
    public required ContainerInfo Info { get; init; }
    public required RecordingInfo Recording { get; init; }
    public required uint Slot { get; init; }
    public required UpperTree Tree { get; init; }
    public required PathFilter Filter { get; init; }
    public required string Keep { get; init; }
    public required string[] LowerDirs { get; init; }
    public required ulong MountNamespace { get; init; }
    /// <summary>`diffkeeper record`: the command's cgroup v2 id the kernel filter tracks (0 for a container).</summary>
    public ulong CgroupId { get; init; }
    public string Key => KeyOf(Info.Namespace, Info.Id);
    public static string KeyOf(string ns, string id) => ns + "/" + id;

    /// <summary>Held around every store write for this recording: the frame thread, lifecycle calls and the exit
    /// ingest mutate the same RecordingInfo (newest moment, stored bytes, exit status).</summary>
    public object WriteLock { get; } = new();

    /// <summary>Nodes captured in the last frame with the lstat taken before their capture: re-checked once in the
    /// next frame (a write to a still-dirty page in the same timestamp tick raises no new kernel event).</summary>
    public List<UpperNode> Recheck = [];

    /// <summary>Number of the frame being processed for this container (<see cref="FrameProcessor.Process"/> calls;
    /// a file changed or waiting is re-checked in the next one, so consecutive numbers are consecutive frames for it).</summary>
    public long FrameSeq;

    /// <summary>Paths larger than the live limit already reported with a gap (one gap per path, not per frame).</summary>
    public HashSet<string> OversizeReported { get; } = new(StringComparer.Ordinal);

    /// <summary>Set by Exited once the kernel no longer tracks it: the frame thread drains once more, then completes
    /// <see cref="Drained"/>.</summary>
    public volatile bool Exiting;
    private int _exitBegun;
    /// <summary>True for the one caller that ends the live capture (Exited and the spool worker may both try).</summary>
    public bool BeginExit() => Interlocked.Exchange(ref _exitBegun, 1) == 0;
    public TaskCompletionSource Drained { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int _endBegun;
    /// <summary>`diffkeeper record`: true for the one that ends the recording, RecordEnd or the close of the CLI's
    /// connection without it (the CLI was killed, or its RecordEnd gave up waiting).</summary>
    public bool BeginEnd() => Interlocked.Exchange(ref _endBegun, 1) == 0;
    /// <summary>`diffkeeper record`: the watch on the CLI's connection (disposed when the recording ends).</summary>
    public CancellationTokenRegistration RecorderWatch;
}
