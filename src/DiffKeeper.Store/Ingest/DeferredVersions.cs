using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Ingest;

/// <summary>
/// The version records of a tree ingest, held back until the chunks they reference are durable. A tree ingest
/// writes its chunks without the log (<see cref="RecordingStore.WriteChunks"/>); the records wait here, then one
/// flush of the chunk family makes every chunk written so far durable and the records go to the store with the
/// log. That happens every <see cref="CommitEveryChunkBytes"/> of new chunks (so a crash costs at most that much
/// redone work), when <see cref="HoldBytes"/> of records are held, and at the end. A kill -9 at any point leaves
/// chunks that nothing references (gc removes them), never a version missing a chunk.
/// </summary>
internal sealed class DeferredVersions : IDisposable
{
    /// <summary>New chunk bytes after which the held records are committed (one extra flush per this much data).</summary>
    public const long CommitEveryChunkBytes = 64L << 20;
    /// <summary>Record bytes held at most (~40 bytes per 16 KiB chunk, a few hundred per small file).</summary>
    private const long HoldBytes = 4L << 20;

    private readonly RecordingStore _store;
    private readonly Lock _lock = new();
    private readonly WriteBatch _batch = new();
    private long _bytes;

    public DeferredVersions(RecordingStore store) => _store = store;

    /// <summary>Holds a version record. Every chunk it references must already be written (logged or not).</summary>
    public void Add(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        lock (_lock)
        {
            _batch.Put(key, value, _store.Versions);
            _bytes += key.Length + value.Length;
            if (_bytes >= HoldBytes || _store.UnloggedChunkBytesPending >= CommitEveryChunkBytes) WriteHeld();
        }
    }

    /// <summary>Makes the chunks durable, then writes every held record (with the log).</summary>
    public void Complete()
    {
        lock (_lock) WriteHeld();
    }

    private void WriteHeld()
    {
        if (_batch.Count() == 0) return;
        // Records were added after their chunks were written, so this flush covers every chunk they name.
        _store.MakeChunksDurable();
        _store.Db.Write(_batch, _store.Write);
        _batch.Clear();
        _bytes = 0;
    }

    public void Dispose() => _batch.Dispose();
}
