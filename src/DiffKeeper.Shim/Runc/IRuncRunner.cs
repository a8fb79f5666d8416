namespace DiffKeeper.Shim.Runc;

/// <summary>
/// The runc operations the shim drives, one method per runc subcommand (<see cref="RuncCommand"/> runs the real
/// binary). An interface so the shim's own ordering logic (event order, exit holding) can be tested in-process with
/// a scripted runner; everything about runc itself is tested against the real one.
/// </summary>
public interface IRuncRunner
{
    RuncSettings Settings { get; }
    Task CreateAsync(string id, string bundle, string pidFile, string? consoleSocket, bool noPivot, bool noNewKeyring, RuncStdio stdio);
    Task ExecAsync(string id, string processSpecFile, string pidFile, string? consoleSocket, RuncStdio stdio);
    Task StartAsync(string id);
    Task PauseAsync(string id);
    Task ResumeAsync(string id);
    Task KillAsync(string id, int signal, bool all);
    Task DeleteAsync(string id, bool force);
    Task UpdateAsync(string id, byte[] resourcesJson);
    Task<List<int>> PsAsync(string id);

    /// <summary>The message of runc's last logged error, if any (better than its exit status).</summary>
    string? LastLoggedError();
}
