using DiffKeeper.Shim.Diagnostics;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// Wraps a hook so the shim never waits on it longer than a bound: on time-out the token is cancelled and
/// the shim goes on (the recording will show the gap); exceptions are logged, never propagated.
/// The bounds are a safety net: the daemon hook bounds each daemon call itself (DIFFKEEPER_RECORDER_TIMEOUT) and the
/// freeze by its own deadline, so the exit bound must leave room for the freeze plus one call.
/// </summary>
internal sealed class BoundedRecorderHook(IRecorderHook inner, TimeSpan createdBound, TimeSpan exitedBound)
{
    public BoundedRecorderHook(IRecorderHook inner, TimeSpan bound) : this(inner, bound, bound) { }

    public Task CreatedAsync(ContainerRecordInfo c) => RunAsync("created", c, createdBound, ct => inner.OnCreatedAsync(c, ct));

    public Task ExitedBeforeUnmountAsync(ContainerRecordInfo c, int exitStatus) =>
        RunAsync("exited", c, exitedBound, ct => inner.OnExitedBeforeUnmountAsync(c, exitStatus, ct));

    public Task DeletedAsync(ContainerRecordInfo c) => RunAsync("deleted", c, createdBound, ct => inner.OnDeletedAsync(c, ct));

    /// <summary>Never blocks, never throws: the event publisher calls this on the container's hot path.</summary>
    public void Lifecycle(LifecycleEvent e)
    {
        try { inner.OnLifecycle(e); }
        catch (Exception ex) { ShimLog.Warn($"recorder hook lifecycle {e.Kind} for {e.ContainerId}: {ex.Message}"); }
    }

    public async Task FlushAsync(TimeSpan bound)
    {
        try
        {
            var flush = inner.FlushAsync(bound);
            await Task.WhenAny(flush, Task.Delay(bound)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            ShimLog.Warn($"recorder hook flush: {e.Message}");
        }
    }

    private static async Task RunAsync(string what, ContainerRecordInfo c, TimeSpan bound, Func<CancellationToken, Task> call)
    {
        using var cts = new CancellationTokenSource(bound);
        try
        {
            // Task.Run: a hook that does synchronous work before its first await must not escape the bound.
            var task = Task.Run(() => call(cts.Token));
            var finished = await Task.WhenAny(task, Task.Delay(bound)).ConfigureAwait(false);
            if (finished != task)
            {
                cts.Cancel();
                ShimLog.Warn($"recorder hook {what} for {c.Id} exceeded {bound.TotalMilliseconds} ms; continuing");
                _ = task.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                return;
            }
            await task.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            ShimLog.Warn($"recorder hook {what} for {c.Id}: {e.Message}");
        }
    }
}
