namespace DiffKeeper.Store.Model;

/// <summary>
/// What a captured path is. Two kinds of deletion: <see cref="Whiteout"/> is overlay's char device 0:0 in the upper
/// layer (a path of the image's lower layers is deleted; exported as a whiteout again); <see cref="Absent"/> means
/// the path is no longer in the upper layer at all (the container removed or renamed away something it had created
/// itself: overlay leaves nothing behind, so an export writes nothing either). Both hide the path and everything
/// recorded below it up to that moment.
/// </summary>
public enum EntryType : byte
{
    File = 0, Directory = 1, Symlink = 2, Fifo = 3, CharDevice = 4, BlockDevice = 5, Socket = 6, Whiteout = 7, Absent = 8,
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
        EntryType.Absent => "absent",
        _ => "unknown",
    };
}
