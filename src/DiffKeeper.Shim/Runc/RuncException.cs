namespace DiffKeeper.Shim.Runc;

/// <summary>runc failed; <see cref="Exception.Message"/> is runc's own error (last error line of its log) when known.</summary>
internal sealed class RuncException(string message, int exitCode) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
