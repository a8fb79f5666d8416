namespace DiffKeeper.Shim.Processes;

/// <summary>A reaped child: its pid, containerd-style exit status (128+signal if signalled) and when it was reaped.</summary>
internal readonly record struct ProcessExit(int Pid, int Status, DateTime ExitedAt);
