namespace DiffKeeper.Shim.Recording;

/// <summary>The hook used until the recorder is plugged in: does nothing.</summary>
public sealed class NoopRecorderHook : IRecorderHook
{
    public Task OnCreatedAsync(ContainerRecordInfo container, CancellationToken ct) => Task.CompletedTask;
    public Task OnExitedBeforeUnmountAsync(ContainerRecordInfo container, int exitStatus, CancellationToken ct) => Task.CompletedTask;
    public Task OnDeletedAsync(ContainerRecordInfo container, CancellationToken ct) => Task.CompletedTask;
}
