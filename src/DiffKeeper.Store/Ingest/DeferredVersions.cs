using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// The version records of a tree ingest, held back until the chunks they reference are durable. A tree ingest
/// writes its chunks without the log (<see cref="ChunkSink.WriteChunks"/>); the records wait here, then the sink
/// makes every chunk written so far durable (one flush of the chunk family) and writes the records with the log
/// (<see cref="ChunkSink.WriteVersions"/>). That happens every <see cref="CommitEveryChunkBytes"/> of new chunks (so
/// a crash costs at most that much redone work), when <see cref="HoldBytes"/> of records are held, and at the end.
/// A kill -9 at any point leaves chunks that nothing references (gc removes them), never a version missing a chunk.
/// <para>
/// The flush and the write of the held records run in the background while the workers go on reading, hashing and
/// compressing the next files: the flush writes with O_DIRECT, so its time is the disk's, and a worker waiting for
/// it made the ingest's wall time follow the disk's momentary latency (1.4–4.7 s for 2.1 s of CPU, same tree,
/// warm). Only the records wait; one commit runs at a time, and a worker waits only when the next batch is already
/// twice over its limit (memory stays bounded when the disk cannot keep up).
/// </para>
/// </summary>
internal sealed class DeferredVersions : IDisposable
{
    /// <summary>New chunk bytes after which the held records are committed (one extra flush per this much data).</summary>
    public const long CommitEveryChunkBytes = 64L << 20;
    /// <summary>Record bytes held at most (~40 bytes per 16 KiB chunk, a few hundred per small file).</summary>
    private const long HoldBytes = 4L << 20;

    private readonly RecordingStore _store;
    private ChunkSink Sink => _store.Sink;
    private readonly Lock _lock = new();
    private ChunkSink.VersionBatch _batch;
    /// <summary>The commit running in the background (flush, then the records it was started for), if any.</summary>
    private Task? _committing;

    public DeferredVersions(RecordingStore store)
    {
        _store = store;
        _batch = store.Sink.NewVersionBatch();
    }

    /// <summary>Holds a version record. Every chunk it references must already be written (logged or not).</summary>
    public void Add(ulong rec, FileVersion v)
    {
        lock (_lock)
        {
            _batch.Add(rec, v);
            long pending = Sink.UnloggedChunkBytesPending;
            if (_batch.Bytes < HoldBytes && pending < CommitEveryChunkBytes) return;
            // The running commit catches up first, unless this batch is already twice over its limit.
            if (_committing is { IsCompleted: false } && _batch.Bytes < 2 * HoldBytes && pending < 2 * CommitEveryChunkBytes) return;
            _committing?.GetAwaiter().GetResult(); // waits if still running; a failed commit fails the ingest
            var held = _batch;
            _batch = Sink.NewVersionBatch();
            _committing = Task.Run(() => WriteHeld(held));
        }
    }

    /// <summary>Waits for the background commit, then makes the chunks durable and writes every record still held.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _committing?.GetAwaiter().GetResult();
            _committing = null;
            WriteHeld(_batch);
            _batch = Sink.NewVersionBatch();
        }
    }

    private void WriteHeld(ChunkSink.VersionBatch batch)
    {
        // Records were added after their chunks were written: the sink makes those durable before the records.
        try { Sink.WriteVersions(batch); }
        finally { batch.Dispose(); }
    }

    public void Dispose()
    {
        // An ingest that failed still must not leave a commit running against a store about to be closed.
        try { _committing?.Wait(); } catch (AggregateException) { }
        _batch.Dispose();
    }
}
