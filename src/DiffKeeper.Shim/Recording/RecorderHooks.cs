namespace DiffKeeper.Shim.Recording;

/// <summary>
/// The hook the shim runs: the daemon hook, plus the diagnostic hook log when <c>DIFFKEEPER_SHIM_HOOK_LOG</c> is set
/// (log first, so it sees the upper dir exactly as the freeze does). Built only for the serving shim and the
/// <c>delete</c> subcommand: <c>start</c> must stay fast and never touches the recorder.
/// </summary>
internal static class RecorderHooks
{
    /// <param name="containerdAddress">containerd's socket (the shim's <c>-address</c>), passed on to the daemon.</param>
    public static IRecorderHook Create(string containerdAddress, RecorderSettings settings, string frozenBy)
    {
        IRecorderHook daemon = new DaemonRecorderHook(settings, containerdAddress, frozenBy);
        return HookLogRecorderHook.FromEnvironment() is { } log ? new CompositeRecorderHook(log, daemon) : daemon;
    }

    /// <summary>The serving shim's safety-net bounds: Track (one call) and the exit (the freeze plus one call).</summary>
    public static BoundedRecorderHook Bound(IRecorderHook hook, RecorderSettings settings) =>
        new(hook, settings.Timeout + TimeSpan.FromSeconds(1), settings.FreezeBudget + settings.Timeout + TimeSpan.FromSeconds(1));
}
