using DiffKeeper.Shim.Cgroups;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Recording;

namespace DiffKeeper.Shim.Service;

/// <summary>The shim-wide services every container uses.</summary>
internal sealed class ShimContext(string ns, Reaper reaper, ExitRouter exits, EventPublisher events, OomWatcher oom,
    BoundedRecorderHook recorder)
{
    public string Namespace => ns;
    public Reaper Reaper => reaper;
    public ExitRouter Exits => exits;
    public EventPublisher Events => events;
    public OomWatcher Oom => oom;
    public BoundedRecorderHook Recorder => recorder;
}
