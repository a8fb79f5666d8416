namespace DiffKeeper.Shim.Processes;

/// <summary>The life of a container process, as the runc shim's state machines define it.</summary>
internal enum ProcessState { Created, Running, Pausing, Paused, Stopped, Deleted }
