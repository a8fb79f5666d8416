using System.Text;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using Libc = DiffKeeper.Store.Native.Libc;
using DiffKeeper.Store.Query;
using Xunit;

namespace DiffKeeper.Store.Tests;

public class IngestRoundTripTests
{
    [Fact]
    public void Every_entry_type_round_trips_with_raw_names_and_metadata()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var weird = new byte[] { (byte)'b', 0xff, 0xfe, (byte)'\n', (byte)'x' };
        Tree.WriteFile(up, "plain.txt", "hello\n");
        Tree.WriteFile(up, weird, "weird"u8, 0x180);
        Tree.WriteFile(up, "empty", "");
        Tree.Mkdir(up, "d/e");
        Tree.WriteFile(up, "d/e/deep", "deep");
        File.CreateSymbolicLink(Path.Combine(up, "d/link"), "../plain.txt");
        Tree.HardLink(up, "plain.txt", "hard");
        Tree.Mknod(up, "fifo", Libc.S_IFIFO, 0, 0);
        Tree.SetXattr(up, "plain.txt", "user.color", [1, 2, 0, 255]);
        var big = Tree.Random(300_000, 7);
        Tree.WriteFile(up, "big.bin"u8, big);
        File.SetLastWriteTimeUtc(Path.Combine(up, "empty"), new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc));

        var rec = f.NewRecording();
        var summary = f.Snapshot(rec, up, 1);
        Assert.True(summary.Changed >= 9);
        f.Reopen();

        var state = StateQuery.At(f.Store, rec.Id, f.At(1), withChunks: true);
        Assert.Equal("hello\n"u8.ToArray(), f.Read(state.Get("plain.txt"u8)!));
        var w = state.Get(weird)!;
        Assert.Equal("weird"u8.ToArray(), f.Read(w));
        Assert.Equal(0x180u, w.Mode);
        Assert.Equal(big, f.Read(state.Get("big.bin"u8)!));
        Assert.True(state.Get("big.bin"u8)!.Chunks.Count > 5);
        Assert.Empty(f.Read(state.Get("empty"u8)!));
        Assert.Equal(new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc), DateTime.UnixEpoch.AddTicks(state.Get("empty"u8)!.MtimeNs / 100));
        Assert.Equal(EntryType.Directory, state.Get("d/e"u8)!.Type);
        var link = state.Get("d/link"u8)!;
        Assert.Equal(EntryType.Symlink, link.Type);
        Assert.Equal("../plain.txt"u8.ToArray(), link.SymlinkTarget);
        var hard = state.Get("hard"u8)!;
        Assert.Equal(EntryType.File, hard.Type);
        // Same inode in one snapshot: the second name in walk order is recorded as a link to the first.
        Assert.Equal("hard"u8.ToArray(), state.Get("plain.txt"u8)!.HardLinkTo);
        Assert.Empty(hard.HardLinkTo);
        Assert.Equal("hello\n"u8.ToArray(), f.Read(hard));
        Assert.Equal(EntryType.Fifo, state.Get("fifo"u8)!.Type);
        var x = Assert.Single(state.Get("plain.txt"u8)!.Xattrs);
        Assert.Equal("user.color"u8.ToArray(), x.Key);
        Assert.Equal(new byte[] { 1, 2, 0, 255 }, x.Value);
        Assert.Equal((uint)Libc.geteuid(), state.Get("plain.txt"u8)!.Uid);
    }

    [SkippableFact]
    public void Device_nodes_keep_their_numbers()
    {
        Integration.RequireRoot("mknod of a device needs root");
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        Tree.Mknod(up, "null", Libc.S_IFCHR, 1, 3);
        Tree.Mknod(up, "blk", Libc.S_IFBLK, 7, 300);
        var rec = f.NewRecording();
        f.Snapshot(rec, up, 0);
        var state = StateQuery.At(f.Store, rec.Id, f.At(0));
        Assert.Equal((EntryType.CharDevice, 1u, 3u), (state.Get("null"u8)!.Type, state.Get("null"u8)!.RdevMajor, state.Get("null"u8)!.RdevMinor));
        Assert.Equal((EntryType.BlockDevice, 7u, 300u), (state.Get("blk"u8)!.Type, state.Get("blk"u8)!.RdevMajor, state.Get("blk"u8)!.RdevMinor));
    }

    [Fact]
    public void Sparse_files_keep_their_holes_and_their_bytes()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var path = Path.Combine(up, "sparse");
        using (var fs = new FileStream(path, FileMode.Create))
        {
            fs.Write("head"u8);
            fs.Seek(64L << 20, SeekOrigin.Begin);
            fs.Write("middle"u8);
            fs.SetLength(200L << 20);
        }
        var rec = f.NewRecording();
        var s = f.Snapshot(rec, up, 0);
        Assert.True(s.BytesRead < 1 << 20, $"holes must not be read ({s.BytesRead} bytes read)");
        var v = StateQuery.Find(f.Store, rec.Id, "sparse"u8, f.At(0))!;
        Assert.Equal(200L << 20, v.Size);
        Assert.True(v.IsSparse);
        using var r = new ContentReader(f.Store, v);
        var head = new byte[4];
        r.ReadExactly(head);
        Assert.Equal("head"u8.ToArray(), head);
        var skip = new byte[(64 << 20) - 4];
        r.ReadExactly(skip);
        Assert.All(skip.AsSpan(0, 4096).ToArray(), b => Assert.Equal(0, b));
        var mid = new byte[6];
        r.ReadExactly(mid);
        Assert.Equal("middle"u8.ToArray(), mid);
    }

    [Fact]
    public void Unchanged_tree_is_skipped_by_stat_and_identical_content_is_deduplicated()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var data = Tree.Random(500_000, 11);
        Tree.WriteFile(up, "a.bin"u8, data);
        Tree.WriteFile(up, "copy.bin"u8, data);
        var rec = f.NewRecording();
        var first = f.Snapshot(rec, up, 0);
        Assert.InRange(first.BytesStored, 1, 600_000); // the copy adds no chunk
        var again = f.Snapshot(rec, up, 1);
        Assert.Equal(0, again.Changed);
        Assert.Equal(0, again.BytesRead);

        // Another recording with the same content under another name stores no new chunk.
        var other = f.Temp.CreateSub("other");
        Tree.WriteFile(other, "renamed.bin"u8, data);
        var rec2 = f.NewRecording("second");
        var s2 = f.Snapshot(rec2, other, 0);
        Assert.Equal(1, s2.Changed);
        Assert.Equal(0, s2.BytesStored);
    }

    [Fact]
    public void A_second_writer_gets_a_clear_lock_error()
    {
        using var f = new StoreFixture();
        var e = Assert.Throws<StoreLockedException>(() => RecordingStore.Open(f.StoreDir));
        Assert.Contains("locked", e.Message);
        using var reader = RecordingStore.Open(f.StoreDir, readOnly: true); // readers are never locked out
    }
}
