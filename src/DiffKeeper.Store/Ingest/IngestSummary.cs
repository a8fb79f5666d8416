namespace DiffKeeper.Store.Ingest;

/// <summary>What one ingest did: entries looked at, versions written, bytes read and newly stored, gaps recorded.</summary>
public sealed class IngestSummary
{
    public long Files;
    public long Changed;
    public long BytesRead;
    public long BytesStored;
    public long Gaps;
    /// <summary>Files not recorded because their one read raced a write (<see cref="Ingester.IngestPath"/> with
    /// <c>oneAttempt</c>: no version, no gap; the caller reads them again later).</summary>
    public long Raced;
}
