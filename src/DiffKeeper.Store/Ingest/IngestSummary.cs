namespace DiffKeeper.Store.Ingest;

/// <summary>What one ingest did: entries looked at, versions written, bytes read and newly stored, gaps recorded.</summary>
public sealed class IngestSummary
{
    public long Files;
    public long Changed;
    public long BytesRead;
    public long BytesStored;
    public long Gaps;
}
