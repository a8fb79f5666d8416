namespace DiffKeeper.Shim.Runc;

/// <summary>Descriptors runc (and through it the container process) gets as 0, 1, 2; null means /dev/null.</summary>
public readonly record struct RuncStdio(int? Stdin, int? Stdout, int? Stderr)
{
    public static RuncStdio Null => new(null, null, null);
}
