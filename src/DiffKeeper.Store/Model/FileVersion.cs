namespace DiffKeeper.Store.Model;

/// <summary>
/// One captured state of one path at one moment. Whiteouts and opaque directories are versions too.
/// Paths are raw bytes relative to the container root (no leading slash).
/// </summary>
public sealed class FileVersion
{
    public byte[] Path = [];
    public long Time;                 // ns since the Unix epoch
    public EntryType Type;
    /// <summary>Directory carries overlay's opaque mark (everything below that is not in it is gone).</summary>
    public bool Opaque;
    /// <summary>This version hides every older version below it (a directory that became opaque at this moment).</summary>
    public bool ReplacesBelow;
    public uint Mode;                 // permission bits (07777)
    public uint Uid, Gid;
    public long Size;
    public long MtimeNs;
    public uint RdevMajor, RdevMinor;
    public byte[] SymlinkTarget = [];
    /// <summary>For a hard link: the path (in the same snapshot) that holds the same inode; empty otherwise.</summary>
    public byte[] HardLinkTo = [];
    public List<KeyValuePair<byte[], byte[]>> Xattrs = [];
    public List<ChunkRef> Chunks = [];
    // Fingerprint used to skip unchanged files on re-ingest (not part of the state shown to users).
    public ulong Inode;
    public long CtimeNs;

    /// <summary>A deletion: a whiteout (deleted lower-layer path) or an absence (gone from the upper layer).</summary>
    public bool IsDeleted => Type is EntryType.Whiteout or EntryType.Absent;
    public bool IsSparse => Chunks.Exists(static c => c.IsHole);

    /// <summary>Same content (type, bytes, symlink target, device) — ignores metadata.</summary>
    public bool SameContent(FileVersion o)
    {
        if (Type != o.Type || Size != o.Size) return false;
        if (!SymlinkTarget.AsSpan().SequenceEqual(o.SymlinkTarget)) return false;
        if (RdevMajor != o.RdevMajor || RdevMinor != o.RdevMinor) return false;
        if (Type != EntryType.File) return true;
        return ContentKey().SequenceEqual(o.ContentKey());
    }

    /// <summary>
    /// Mode, owner and xattrs (what diff calls metadata; mtime alone is not a change). Opaque is not state: it
    /// marks the moment a directory replaced what was below it (see <see cref="ReplacesBelow"/>).
    /// </summary>
    public bool SameMetadata(FileVersion o)
    {
        if (Type != o.Type || Mode != o.Mode || Uid != o.Uid || Gid != o.Gid) return false;
        if (Xattrs.Count != o.Xattrs.Count) return false;
        for (int i = 0; i < Xattrs.Count; i++)
            if (!Xattrs[i].Key.AsSpan().SequenceEqual(o.Xattrs[i].Key) || !Xattrs[i].Value.AsSpan().SequenceEqual(o.Xattrs[i].Value))
                return false;
        return true;
    }

    /// <summary>Everything a re-capture compares to decide that nothing changed.</summary>
    public bool SameState(FileVersion o) =>
        SameContent(o) && SameMetadata(o) && MtimeNs == o.MtimeNs && HardLinkTo.AsSpan().SequenceEqual(o.HardLinkTo);

    /// <summary>A byte string that is equal for equal contents (chunk hashes and hole lengths).</summary>
    public byte[] ContentKey()
    {
        var key = new byte[Chunks.Count * 40];
        for (int i = 0; i < Chunks.Count; i++)
        {
            Chunks[i].Hash.CopyTo(key.AsSpan(i * 40));
            BitConverter.TryWriteBytes(key.AsSpan(i * 40 + 32), Chunks[i].Length);
        }
        return key;
    }
}
