namespace DiffKeeper.Store.Model;

/// <summary>What a captured path is. Whiteout = the path is deleted at that moment.</summary>
public enum EntryType : byte
{
    File = 0, Directory = 1, Symlink = 2, Fifo = 3, CharDevice = 4, BlockDevice = 5, Socket = 6, Whiteout = 7,
}

public static class EntryTypeNames
{
    public static string Name(this EntryType t) => t switch
    {
        EntryType.File => "file",
        EntryType.Directory => "dir",
        EntryType.Symlink => "symlink",
        EntryType.Fifo => "fifo",
        EntryType.CharDevice => "chardev",
        EntryType.BlockDevice => "blockdev",
        EntryType.Socket => "socket",
        EntryType.Whiteout => "whiteout",
        _ => "unknown",
    };
}
