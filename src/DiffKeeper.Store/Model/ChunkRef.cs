namespace DiffKeeper.Store.Model;

/// <summary>
/// One piece of a file's content: a stored chunk (SHA-256 of its raw bytes) or, when <see cref="IsHole"/>,
/// a run of zeros that is a hole in a sparse file and has no stored chunk.
/// </summary>
public readonly record struct ChunkRef(Hash256 Hash, long Length)
{
    public bool IsHole => Hash.IsZero;
    public static ChunkRef Hole(long length) => new(default, length);
}
