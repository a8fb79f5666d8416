namespace DiffKeeper.Shim.Io;

/// <summary>The stdio a client asked for: FIFO paths or file:// / binary:// URIs; empty means /dev/null.</summary>
internal sealed record StdioPaths(string Stdin, string Stdout, string Stderr, bool Terminal);
