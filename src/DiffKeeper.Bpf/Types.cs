namespace DiffKeeper.Bpf;

/// <summary>What the kernel saw happen to an inode since the last drain (a bitmask; mirrors DK_* in the BPF C).</summary>
[Flags]
public enum ChangeKinds : byte
{
    /// <summary>A data page became dirty: write(2), an mmap store, fallocate... (writeback_dirty_folio).</summary>
    Data = 1,
    /// <summary>The inode's ctime was set: chmod/chown/setxattr/truncate, a link or unlink (link count), a rename,
    /// and the time update of a write — so a write to a page that is still dirty, or an O_DIRECT write, shows as
    /// Meta only: re-read a regular file with Meta too.</summary>
    Meta = 2,
    /// <summary>The inode is a directory: with Meta, its entries changed (create/unlink/rename/mkdir/rmdir/symlink/link in it).</summary>
    Directory = 4,
}

/// <summary>One entry of the kernel's dirty set: an inode a tracked container changed since the last drain.</summary>
/// <param name="Dev">The inode's device, in user-space st_dev encoding (compare with stat()).</param>
/// <param name="Ino">The inode number. On overlayfs, the UPPER file system's inode (see docs/bpf.md).</param>
/// <param name="Slot">The container slot given to <see cref="ChangeCapture.Track"/> for the last writer's mount namespace.</param>
/// <param name="Kinds">Every kind seen since the last drain.</param>
/// <param name="FirstRealtimeNs">CLOCK_REALTIME ns of the first event since the last drain.</param>
/// <param name="LastRealtimeNs">CLOCK_REALTIME ns of the last event.</param>
/// <param name="Pid">Process (tgid) of the last writer, as seen from the initial pid namespace.</param>
/// <param name="Comm">comm of the last writer's thread.</param>
/// <param name="Merged">Events folded into this entry after the first.</param>
public readonly record struct DirtyInode(ulong Dev, ulong Ino, uint Slot, ChangeKinds Kinds,
    long FirstRealtimeNs, long LastRealtimeNs, int Pid, string Comm, uint Merged);

/// <summary>The one directory tree a recorded command's changes are captured in (<see cref="ChangeCapture.TrackCgroup"/>):
/// the root directory's device (major, minor) and inode number. The kernel drops the command's changes elsewhere.</summary>
public readonly record struct WatchedTree(uint DevMajor, uint DevMinor, ulong RootInode);

/// <summary>Kernel counters since load: hook hits in tracked namespaces, those merged into an existing entry, those lost to a
/// full dirty set, and those coalesced: already covered by a fresh entry of the same writer, so the entry was left as it
/// was (its <see cref="DirtyInode.Merged"/> does not count them). Every event is in exactly one of: an entry (Merged + 1
/// per entry), Lost, Coalesced.</summary>
public readonly record struct CaptureCounters(ulong Events, ulong Merged, ulong Lost, ulong Coalesced = 0);

/// <summary>A failure to load, attach or use the eBPF capture; the message names the cause (missing kernel
/// feature, permission, file) and carries libbpf's own messages.</summary>
public sealed class BpfException : Exception
{
    public BpfException(string message, int errno = 0) : base(message) => Errno = errno;

    /// <summary>The errno behind the failure, or 0.</summary>
    public int Errno { get; }
}
