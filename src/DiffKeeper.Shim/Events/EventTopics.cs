namespace DiffKeeper.Shim.Events;

/// <summary>containerd's task event topics.</summary>
internal static class EventTopics
{
    public const string TaskCreate = "/tasks/create";
    public const string TaskStart = "/tasks/start";
    public const string TaskExit = "/tasks/exit";
    public const string TaskDelete = "/tasks/delete";
    public const string TaskOOM = "/tasks/oom";
    public const string TaskExecAdded = "/tasks/exec-added";
    public const string TaskExecStarted = "/tasks/exec-started";
    public const string TaskPaused = "/tasks/paused";
    public const string TaskResumed = "/tasks/resumed";
}
