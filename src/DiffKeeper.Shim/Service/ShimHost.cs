using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// The shim as a library: the task service and everything it runs on, built from the three parts that reach
/// outside the process, taken as interfaces: the runc runner (one per container's settings), the event sink
/// (containerd's events service) and the recorder hook (diffkeeperd). The binary (src/DiffKeeper.Shim.Binary, Cli/ServeCommand) builds it with
/// the real ones and serves it over ttrpc; tests build it with scripted ones to check the shim's own ordering
/// logic, and report exits through <see cref="Exits"/> as the reaper would.
/// </summary>
public sealed class ShimHost : IDisposable
{
    private readonly OomWatcher _oom;

    /// <param name="recorder">The recorder hook; the host bounds every call to it (<see cref="RecorderHooks.Bound"/>).</param>
    public ShimHost(string ns, Reaper reaper, Func<RuncSettings, IRuncRunner> runc, IEventSink events,
        IRecorderHook recorder, RecorderSettings recorderSettings)
    {
        Recorder = RecorderHooks.Bound(recorder, recorderSettings);
        Exits = new ExitRouter();
        reaper.UnownedExit += Exits.Dispatch;
        TaskService? service = null;
        _oom = new OomWatcher(id => service?.OnOom(id));
        Tasks = service = new TaskService(new ShimContext(ns, reaper, Exits, runc, events, _oom, Recorder));
    }

    /// <summary>The shim with real runc (reaped by <paramref name="reaper"/>).</summary>
    public static ShimHost WithRunc(string ns, Reaper reaper, IEventSink events, IRecorderHook recorder,
        RecorderSettings recorderSettings) =>
        new(ns, reaper, settings => new RuncCommand(settings, reaper), events, recorder, recorderSettings);

    /// <summary>Where container process exits arrive (the reaper feeds it; pids are claimed by their owners).</summary>
    internal ExitRouter Exits { get; }

    internal TaskService Tasks { get; }

    /// <summary>The recorder hook as the shim calls it (bounded); flushed by the binary before it exits.</summary>
    internal BoundedRecorderHook Recorder { get; }

    /// <summary>Completes when Shutdown found no container left: the shim should exit.</summary>
    public Task ShutdownRequested => Tasks.ShutdownRequested;

    public void Register(TtrpcServer server) => Tasks.Register(server);

    public void Dispose() => _oom.Dispose();
}
