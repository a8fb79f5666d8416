namespace DiffKeeper.Shim.Recording;

/// <summary>
/// Where the flight recorder plugs into the shim's lifecycle. The shim never waits on a hook for longer than a
/// configured bound (see <see cref="BoundedRecorderHook"/>) and a container runs normally when a hook fails.
/// </summary>
public interface IRecorderHook
{
    /// <summary>After runc create succeeded (rootfs mounted, init created but not started).</summary>
    Task OnCreatedAsync(ContainerRecordInfo container, CancellationToken ct);

    /// <summary>
    /// The safe window: the init process has exited and was reaped, runc delete ran, the rootfs is still mounted
    /// and nothing writes to it any more; called before unmounting, from Delete(init) and from the
    /// <c>delete</c> subcommand when the rootfs is still mounted there (the shim died before Delete).
    /// Freeze quickly (hard links / reflinks), ingest later.
    /// </summary>
    Task OnExitedBeforeUnmountAsync(ContainerRecordInfo container, int exitStatus, CancellationToken ct);

    /// <summary>After the container is gone (rootfs unmounted, TaskDelete published).</summary>
    Task OnDeletedAsync(ContainerRecordInfo container, CancellationToken ct);

    /// <summary>
    /// A lifecycle event, called where the shim publishes the matching containerd event (on the caller's thread,
    /// often under the container's locks): must only queue and return, never block or throw.
    /// </summary>
    void OnLifecycle(LifecycleEvent e) { }

    /// <summary>Before the shim exits: deliver what is queued, for at most <paramref name="bound"/>.</summary>
    Task FlushAsync(TimeSpan bound) => Task.CompletedTask;
}

/// <summary>
/// One lifecycle event for the recorder: <c>start</c>, <c>exec-added</c>, <c>exec-started</c>, <c>exit</c> (of an
/// exec or the init; <see cref="ExecId"/> empty for the init), <c>oom</c>, <c>delete</c>.
/// </summary>
public sealed record LifecycleEvent(string Namespace, string ContainerId, string Kind, DateTime Time, int Pid = 0,
    string ExecId = "", int ExitStatus = 0);
