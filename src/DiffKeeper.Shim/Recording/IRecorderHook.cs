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
}
