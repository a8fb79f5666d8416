using DiffKeeper.Store;

namespace DiffKeeper.Cli.Export;

public sealed class ExportSummary
{
    public long Entries, Bytes;
    /// <summary>Entries refused because their names were unsafe (exit 4 at the end).</summary>
    public List<string> Unsafe = [];
    /// <summary>Things that could not be restored (e.g. device nodes without root): reported, not fatal.</summary>
    public List<string> Warnings = [];

    /// <summary>Exit 4 (invalid data) when any entry was refused for an unsafe name; <paramref name="after"/> says what that means for the output.</summary>
    public void ThrowIfUnsafe(string? after = null)
    {
        if (Unsafe.Count > 0)
            throw new CorruptDataException($"refused {Unsafe.Count} entries with unsafe names (e.g. {Unsafe[0]}){after}");
    }
}
