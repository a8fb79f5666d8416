namespace DiffKeeper.Store.Model;

/// <summary>
/// A lifecycle event (create, start, exec-added, exec-started, exit, oom, delete), a change event (write, create,
/// delete, rename, chmod, chown, mkdir, symlink, xattr) or a gap (an explicit record of lost detail).
/// </summary>
public sealed class RecordedEvent
{
    public long Time;
    public string Kind = "";
    public byte[] Path = [];
    /// <summary>Second path of a rename (the new name).</summary>
    public byte[] ToPath = [];
    public int? Pid;
    public string? Comm;
    public string? Detail;
    public ulong Seq;

    public bool IsGap => Kind == EventKinds.Gap;
}

public static class EventKinds
{
    public const string Gap = "gap", Exit = "exit", Rename = "rename";
    public const string Create = "create", Start = "start", ExecAdded = "exec-added", ExecStarted = "exec-started",
        Oom = "oom", Delete = "delete";
}
