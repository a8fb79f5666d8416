using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Protos.Events;
using Google.Protobuf;

namespace DiffKeeper.Shim.Recording;

/// <summary>Turns the containerd task events the shim publishes into the recorder's lifecycle events.</summary>
internal static class LifecycleEvents
{
    /// <summary>The recorder's event for a published containerd event; null for topics it does not record
    /// (create: Track carries it; pause/resume/checkpoint: not in the recorder API).</summary>
    public static LifecycleEvent? From(string ns, string topic, IMessage evt)
    {
        var now = DateTime.UtcNow;
        return (topic, evt) switch
        {
            (EventTopics.TaskStart, TaskStart e) => new LifecycleEvent(ns, e.ContainerId, "start", now, (int)e.Pid),
            (EventTopics.TaskExecAdded, TaskExecAdded e) => new LifecycleEvent(ns, e.ContainerId, "exec-added", now, ExecId: e.ExecId),
            (EventTopics.TaskExecStarted, TaskExecStarted e) => new LifecycleEvent(ns, e.ContainerId, "exec-started", now, (int)e.Pid, e.ExecId),
            (EventTopics.TaskExit, TaskExit e) => new LifecycleEvent(ns, e.ContainerId, "exit", e.ExitedAt?.ToDateTime() ?? now, (int)e.Pid,
                e.Id == e.ContainerId ? "" : e.Id, (int)e.ExitStatus),
            (EventTopics.TaskOOM, TaskOOM e) => new LifecycleEvent(ns, e.ContainerId, "oom", now),
            (EventTopics.TaskDelete, TaskDelete e) => new LifecycleEvent(ns, e.ContainerId, "delete", now, (int)e.Pid, e.Id, (int)e.ExitStatus),
            _ => null,
        };
    }
}
