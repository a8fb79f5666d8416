namespace DiffKeeper.Cli.Export;

public sealed class ExportSummary
{
    public long Entries, Bytes;
    /// <summary>Entries refused because their names were unsafe (exit 4 at the end).</summary>
    public List<string> Unsafe = [];
    /// <summary>Things that could not be restored (e.g. device nodes without root): reported, not fatal.</summary>
    public List<string> Warnings = [];
}
