namespace DiffKeeper.Shim.Processes;

/// <summary>The classes of failure containerd tells apart (its errdefs); TaskService maps them to ttrpc codes.</summary>
internal enum ErrorKind { Unknown, NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unimplemented }

/// <summary>
/// A refused or failed task operation, as a plain value: what went wrong (<see cref="Kind"/>) and the text containerd
/// shows. Processes and containers throw it; only <see cref="Service.TaskService"/> turns it into a ttrpc error.
/// </summary>
internal sealed class ProcessError(ErrorKind kind, string message) : Exception(message)
{
    public ErrorKind Kind { get; } = kind;
}

/// <summary>The errors the task operations raise, named by class (containerd's errdefs).</summary>
internal static class TaskErrors
{
    public static ProcessError NotFound(string message) => new(ErrorKind.NotFound, message);
    public static ProcessError AlreadyExists(string message) => new(ErrorKind.AlreadyExists, message);
    public static ProcessError FailedPrecondition(string message) => new(ErrorKind.FailedPrecondition, message);
    public static ProcessError InvalidArgument(string message) => new(ErrorKind.InvalidArgument, message);
    public static ProcessError Unimplemented(string message) => new(ErrorKind.Unimplemented, message);

    /// <summary>A plain error (Go's errors.New): code Unknown, message as is.</summary>
    public static ProcessError Unknown(string message) => new(ErrorKind.Unknown, message);

    public static ProcessError ContainerNotCreated() => NotFound("container not created");

    /// <summary>Maps a failed <c>runc kill</c> like the runc shim's checkKillError.</summary>
    public static ProcessError FromKillError(string message)
    {
        if (message.Contains("os: process already finished") || message.Contains("container not running") ||
            message.Contains("no such process", StringComparison.OrdinalIgnoreCase))
            return NotFound("process already finished");
        if (message.Contains("does not exist")) return NotFound("no such container");
        return Unknown("unknown error after kill: " + message);
    }
}
