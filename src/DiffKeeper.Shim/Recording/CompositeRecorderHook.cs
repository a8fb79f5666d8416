namespace DiffKeeper.Shim.Recording;

/// <summary>Several hooks in order (the diagnostic hook log beside the daemon hook); one failing does not skip the next.</summary>
internal sealed class CompositeRecorderHook(params IRecorderHook[] hooks) : IRecorderHook
{
    public Task OnCreatedAsync(ContainerRecordInfo c, CancellationToken ct) => Each(h => h.OnCreatedAsync(c, ct));

    public Task OnExitedBeforeUnmountAsync(ContainerRecordInfo c, int exitStatus, CancellationToken ct) =>
        Each(h => h.OnExitedBeforeUnmountAsync(c, exitStatus, ct));

    public Task OnDeletedAsync(ContainerRecordInfo c, CancellationToken ct) => Each(h => h.OnDeletedAsync(c, ct));

    public void OnLifecycle(LifecycleEvent e)
    {
        foreach (var h in hooks)
        {
            try { h.OnLifecycle(e); }
            catch (Exception ex) { Diagnostics.ShimLog.Warn($"recorder hook lifecycle {e.Kind} for {e.ContainerId}: {ex.Message}"); }
        }
    }

    public Task FlushAsync(TimeSpan bound) => Task.WhenAll(hooks.Select(h => h.FlushAsync(bound)));

    private async Task Each(Func<IRecorderHook, Task> call)
    {
        List<Exception>? errors = null;
        foreach (var h in hooks)
        {
            try { await call(h).ConfigureAwait(false); }
            catch (Exception e) { (errors ??= new()).Add(e); }
        }
        if (errors != null) throw new AggregateException(errors);
    }
}
