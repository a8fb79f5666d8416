namespace DiffKeeper.Ttrpc;

/// <summary>
/// A ttrpc status other than OK. Handlers throw it to choose the status they answer with; the client throws it
/// when the server answered with a non-OK status or the call could not complete (Unavailable, DeadlineExceeded).
/// </summary>
public sealed class TtrpcException(TtrpcStatusCode code, string message) : Exception(message)
{
    public TtrpcStatusCode Code { get; } = code;

    public override string ToString() => $"ttrpc {Code}: {Message}";
}
