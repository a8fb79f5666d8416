namespace DiffKeeper.Store.Ingest;

/// <summary>
/// Lets a caller slow a tree ingest down without changing what it writes: the capture workers report every buffer
/// they read from the tree (before hashing, compressing and writing it), and the pacer may block the worker for a
/// while. Reading is the head of the ingest's pipeline, so a bound on bytes read bounds its CPU, memory bandwidth
/// and store writes alike. Called from several workers at once; must never throw.
/// </summary>
public interface IIngestPacer
{
    /// <summary><paramref name="bytes"/> were just read from the tree; may block before the worker goes on.</summary>
    void Consumed(long bytes);
}
