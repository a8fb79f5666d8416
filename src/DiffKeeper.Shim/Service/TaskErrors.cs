using DiffKeeper.Ttrpc;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// ttrpc errors the way containerd's errdefs.ToGRPC produces them: the status code plus the error class
/// appended to the message (containerd's client strips and re-adds it, so `ctr` prints e.g.
/// "process already finished: not found").
/// </summary>
internal static class TaskErrors
{
    public static TtrpcException NotFound(string message) => new(TtrpcStatusCode.NotFound, message + ": not found");
    public static TtrpcException AlreadyExists(string message) => new(TtrpcStatusCode.AlreadyExists, message + ": already exists");
    public static TtrpcException FailedPrecondition(string message) => new(TtrpcStatusCode.FailedPrecondition, message + ": failed precondition");
    public static TtrpcException InvalidArgument(string message) => new(TtrpcStatusCode.InvalidArgument, message + ": invalid argument");
    public static TtrpcException Unimplemented(string message) => new(TtrpcStatusCode.Unimplemented, message + ": not implemented");

    /// <summary>A plain error (Go's errors.New): code Unknown, message as is.</summary>
    public static TtrpcException Unknown(string message) => new(TtrpcStatusCode.Unknown, message);

    public static TtrpcException ContainerNotCreated() => NotFound("container not created");

    /// <summary>Maps a failed <c>runc kill</c> like the runc shim's checkKillError.</summary>
    public static TtrpcException FromKillError(string message)
    {
        if (message.Contains("os: process already finished") || message.Contains("container not running") ||
            message.Contains("no such process", StringComparison.OrdinalIgnoreCase))
            return NotFound("process already finished");
        if (message.Contains("does not exist")) return NotFound("no such container");
        return Unknown("unknown error after kill: " + message);
    }
}
