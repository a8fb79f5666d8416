using System.Diagnostics;
using DiffKeeper.Store.Maintenance;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Pack;
using DiffKeeper.Store.Query;
using Xunit;

namespace DiffKeeper.Store.Tests;

public class IntegrityTests
{
    [Fact]
    public void A_damaged_chunk_is_an_error_on_read_and_in_doctor_never_a_wrong_file()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var data = Tree.Random(100_000, 5);
        Tree.WriteFile(up, "f.bin"u8, data);
        var rec = f.NewRecording();
        f.Snapshot(rec, up, 0);
        var v = StateQuery.Find(f.Store, rec.Id, "f.bin"u8, f.At(0))!;
        Assert.Equal(data, f.Read(v));
        Assert.True(Doctor.Check(f.Store).Healthy);

        // Flip one payload byte of the second chunk as stored (raw or zstd, the hash check must catch it).
        var h = v.Chunks[1].Hash;
        var stored = f.Store.GetStoredChunk(h)!;
        stored[^1] ^= 0x40;
        f.Store.Db.Put(h.ToArray(), stored, f.Store.Chunks, f.Store.Write);

        var e = Assert.Throws<CorruptDataException>(() => f.Read(v));
        Assert.Contains(h.ToString(), e.Message);
        var report = Doctor.Check(f.Store);
        Assert.False(report.Healthy);
        Assert.Contains(report.Problems, p => p.Contains(h.ToString()));

        // A missing chunk is reported too.
        f.Store.Db.Remove(h.ToArray(), f.Store.Chunks, f.Store.Write);
        Assert.Throws<CorruptDataException>(() => f.Read(v));
        Assert.Contains(Doctor.Check(f.Store).Problems, p => p.Contains("missing"));
    }

    [Fact]
    public void Pack_round_trips_and_a_truncated_or_flipped_pack_is_refused()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var data = Tree.Random(200_000, 9);
        Tree.WriteFile(up, "f.bin"u8, data);
        Tree.WriteFile(up, "g.txt", "text");
        var rec = f.NewRecording("packme");
        f.Snapshot(rec, up, 1);
        f.Store.AddEvent(rec, new RecordedEvent { Time = f.At(2), Kind = EventKinds.Exit, Detail = "3" });
        var other = f.NewRecording("unrelated");
        var up2 = f.Temp.CreateSub("up2");
        Tree.WriteFile(up2, "other.bin"u8, Tree.Random(300_000, 10));
        f.Snapshot(other, up2, 1);

        var file = Path.Combine(f.Temp.Path, "rec.dkpack");
        PackWriter.Write(f.Store, f.Store.GetRecording(rec.Id)!, file);
        Assert.InRange(new FileInfo(file).Length, 150_000, 260_000); // only this recording's chunks

        var (store, packed) = PackReader.Open(file);
        using (store)
        {
            Assert.Equal(rec.Id, packed.Id);
            Assert.Equal("packme", packed.Name);
            Assert.Equal(3, packed.ExitStatus);
            Assert.Equal(data, StoreFixture.Read(store, StateQuery.Find(store, packed.Id, "f.bin"u8, f.At(1))!));
            Assert.Single(store.ListRecordings());
        }

        // Chunk bytes are read from the packed file in place: a file changed after it was opened (and checked) is
        // an error on read, never wrong bytes.
        var changing = Path.Combine(f.Temp.Path, "changing.dkpack");
        File.Copy(file, changing);
        var (store2, packed2) = PackReader.Open(changing);
        using (store2)
        {
            var v = StateQuery.Find(store2, packed2.Id, "f.bin"u8, f.At(1))!;
            var content = File.ReadAllBytes(changing);
            for (int i = PackFormat.HeaderSize; i < content.Length - PackFormat.FooterSize; i += 997) content[i] ^= 0x5A;
            File.WriteAllBytes(changing, content); // rewritten in place: the open handle sees the new bytes
            Assert.Throws<CorruptDataException>(() => new ContentReader(store2, v).CopyTo(Stream.Null));
            File.WriteAllBytes(changing, content[..(PackFormat.HeaderSize + 10)]);
            Assert.Throws<CorruptDataException>(() => new ContentReader(store2, v).CopyTo(Stream.Null));
        }

        var bytes = File.ReadAllBytes(file);
        var truncated = Path.Combine(f.Temp.Path, "truncated.dkpack");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Contains("truncated", Assert.Throws<CorruptDataException>(() => PackReader.Open(truncated)).Message);

        var flipped = Path.Combine(f.Temp.Path, "flipped.dkpack");
        bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(flipped, bytes);
        Assert.Throws<CorruptDataException>(() => PackReader.Open(flipped));

        var garbage = Path.Combine(f.Temp.Path, "garbage.dkpack");
        File.WriteAllBytes(garbage, Tree.Random(5000, 1));
        Assert.Contains("not a diffkeeper", Assert.Throws<CorruptDataException>(() => PackReader.Open(garbage)).Message);
    }

    [Fact]
    public void Gc_drops_by_policy_and_sweeps_only_unused_chunks()
    {
        using var f = new StoreFixture();
        var shared = Tree.Random(200_000, 20);
        RecordingInfo Make(string name, int exit, int seed, double start)
        {
            var rec = f.Store.CreateRecording(new RecordingInfo { Name = name, Start = f.At(start) });
            var up = f.Temp.CreateSub(name);
            Tree.WriteFile(up, "shared.bin"u8, shared);
            Tree.WriteFile(up, "own.bin"u8, Tree.Random(200_000, seed));
            new Ingest.Ingester(f.Store).IngestTree(rec, up, f.At(start + 1));
            f.Store.AddEvent(rec, new RecordedEvent { Time = f.At(start + 2), Kind = EventKinds.Exit, Detail = exit.ToString() });
            return rec;
        }
        var ok = Make("ok", 0, 21, 0);
        var failed = Make("failed", 1, 22, 10);

        var dry = GarbageCollector.Run(f.Store, new RetentionPolicy { KeepFailedOnly = true, DryRun = true });
        Assert.Equal(ok.Id, Assert.Single(dry.Dropped).Id);
        Assert.NotNull(f.Store.GetRecording(ok.Id));

        var result = GarbageCollector.Run(f.Store, new RetentionPolicy { KeepFailedOnly = true });
        Assert.Equal(ok.Id, Assert.Single(result.Dropped).Id);
        Assert.Null(f.Store.GetRecording(ok.Id));
        Assert.InRange(result.BytesFreed, 150_000, 260_000); // ok's own chunks only; shared ones stay
        Assert.True(Doctor.Check(f.Store).Healthy);
        var v = StateQuery.Find(f.Store, failed.Id, "shared.bin"u8, f.At(12))!;
        Assert.Equal(shared, f.Read(v));

        GarbageCollector.Run(f.Store, new RetentionPolicy { KeepLast = 0 });
        Assert.Empty(f.Store.ListRecordings());
        var report = Doctor.Check(f.Store);
        Assert.Equal(0, report.Chunks);
    }

    [Fact]
    public void Gc_max_bytes_counts_a_shared_chunk_as_freed_only_with_its_last_user()
    {
        using var f = new StoreFixture();
        var shared = Tree.Random(4 << 20, 30); // incompressible: bytes on disk = bytes of data
        RecordingInfo Make(string name, int seed, double start)
        {
            var rec = f.Store.CreateRecording(new RecordingInfo { Name = name, Start = f.At(start) });
            var up = f.Temp.CreateSub(name);
            Tree.WriteFile(up, "shared.bin"u8, shared);
            Tree.WriteFile(up, "own.bin"u8, Tree.Random(1 << 20, seed));
            new Ingest.Ingester(f.Store).IngestTree(rec, up, f.At(start + 1));
            return rec;
        }
        var old = Make("old", 31, 0);
        var mid = Make("mid", 32, 10);
        var recent = Make("new", 33, 20);
        f.Store.Flush();
        // ~7.3 MB: 4 MiB shared by all three + 1 MiB of each's own. "old" added 5 MiB, the others 1 MiB each, yet
        // dropping "old" frees only its own 1 MiB. To fit in 5.8 MB both older recordings must go (counting what
        // each added, dropping "old" alone would seem to leave 2.1 MB and stop at 6.3 MB).
        var result = GarbageCollector.Run(f.Store, new RetentionPolicy { MaxBytes = 5_800_000 });
        Assert.Equal(new[] { old.Id, mid.Id }.Order(), result.Dropped.Select(r => r.Id).Order());
        Assert.InRange(result.BytesFreed, 2 << 20, (2 << 20) + 100_000);
        Assert.Equal(shared, f.Read(StateQuery.Find(f.Store, recent.Id, "shared.bin"u8, f.At(21))!));
        Assert.True(Doctor.Check(f.Store).Healthy);

        // A limit the store already fits drops nothing.
        Assert.Empty(GarbageCollector.Run(f.Store, new RetentionPolicy { MaxBytes = 100_000_000 }).Dropped);
    }
}
