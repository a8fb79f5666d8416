using DiffKeeper.Shim.Diagnostics;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// Wraps a hook so the shim never waits on it longer than <c>bound</c>: on time-out the token is cancelled and
/// the shim goes on (the recording will show the gap); exceptions are logged, never propagated.
/// </summary>
public sealed class BoundedRecorderHook(IRecorderHook inner, TimeSpan bound)
{
    public static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(2);

    public Task CreatedAsync(ContainerRecordInfo c) => RunAsync("created", c, ct => inner.OnCreatedAsync(c, ct));

    public Task ExitedBeforeUnmountAsync(ContainerRecordInfo c, int exitStatus) =>
        RunAsync("exited", c, ct => inner.OnExitedBeforeUnmountAsync(c, exitStatus, ct));

    public Task DeletedAsync(ContainerRecordInfo c) => RunAsync("deleted", c, ct => inner.OnDeletedAsync(c, ct));

    private async Task RunAsync(string what, ContainerRecordInfo c, Func<CancellationToken, Task> call)
    {
        using var cts = new CancellationTokenSource(bound);
        try
        {
            var task = call(cts.Token);
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
