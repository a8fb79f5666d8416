using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using Google.Protobuf;

namespace DiffKeeper.Shim.Service;

/// <summary>The shim-wide services every container uses (built by <see cref="ShimHost"/>).</summary>
internal sealed class ShimContext(string ns, Reaper reaper, ExitRouter exits, Func<RuncSettings, IRuncRunner> runc,
    IEventSink events, OomWatcher oom, BoundedRecorderHook recorder)
{
    public string Namespace => ns;
    public Reaper Reaper => reaper;
    public ExitRouter Exits => exits;
    public OomWatcher Oom => oom;
    public BoundedRecorderHook Recorder => recorder;

    /// <summary>A runc runner for one container's settings (its bundle's log, the options' root and binary).</summary>
    public IRuncRunner Runc(RuncSettings settings) => runc(settings);

    /// <summary>
    /// Publishes a task event to containerd and tells the recorder the same lifecycle step, in the same order:
    /// the recorder hears exactly what containerd hears.
    /// </summary>
    public void Publish(string topic, IMessage evt)
    {
        try
        {
            if (LifecycleEvents.From(ns, topic, evt) is { } e) recorder.Lifecycle(e);
        }
        catch (Exception e)
        {
            ShimLog.Warn($"recorder lifecycle for {topic}: {e.Message}");
        }
        events.Publish(topic, evt);
    }
}
