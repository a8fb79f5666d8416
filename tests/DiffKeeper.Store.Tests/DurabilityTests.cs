using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Query;
using DiffKeeper.Store.Rocks;
using Xunit;

namespace DiffKeeper.Store.Tests;

/// <summary>
/// What a crash leaves. A tree ingest writes chunk bytes once, without the write-ahead log, and its version records
/// with the log only after a flush made those chunks durable. These tests take a "crash image" — a copy of a live
/// store's files while its writer is still open, which is what kill -9 leaves (everything written is in the page
/// cache; nothing of the process's memory is) — and check what a reader finds in it.
/// </summary>
public class DurabilityTests
{
    [Fact]
    public void A_tree_ingest_logs_its_versions_not_its_chunk_bytes_and_a_crash_image_holds_every_version_whole()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var contents = new byte[6][];
        for (int i = 0; i < contents.Length; i++)
        {
            contents[i] = Tree.Random(6 << 20, 40 + i); // incompressible: stored bytes = data bytes
            Tree.WriteFile(up, System.Text.Encoding.UTF8.GetBytes($"f{i}.bin"), contents[i]);
        }
        var rec = f.NewRecording();
        var summary = f.Snapshot(rec, up, 1);
        Assert.Equal(contents.Length, summary.Changed);

        long logBytes = LogBytes(f.StoreDir);
        Assert.True(logBytes < summary.BytesStored / 20,
            $"the write-ahead log holds {logBytes} bytes after ingesting {summary.BytesStored} bytes of chunks: chunk bytes went to the log too");

        var crash = CrashImage(f, "crash");
        Assert.True(LogBytes(crash) > 16 << 10, "the crash image's log holds no version records: nothing lives only there");
        using (var reader = RecordingStore.Open(crash, readOnly: true))
        {
            var state = StateQuery.At(reader, rec.Id, f.At(1), withChunks: true);
            for (int i = 0; i < contents.Length; i++)
            {
                var v = state.Get(System.Text.Encoding.UTF8.GetBytes($"f{i}.bin"));
                Assert.NotNull(v);
                Assert.True(StoreFixture.Read(reader, v).AsSpan().SequenceEqual(contents[i]), $"f{i}.bin differs in the crash image");
            }
        }

        // Damage inside the log that holds those versions: a reader must refuse the store, never show it without them.
        foreach (var log in Directory.EnumerateFiles(crash, "*.log").Where(p => new FileInfo(p).Length > 16 << 10))
            FlipBytes(log);
        var e = Assert.Throws<CorruptDataException>(() => RecordingStore.Open(crash, readOnly: true).Dispose());
        Assert.Contains("corrupt", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_single_path_that_reuses_an_unlogged_chunk_makes_it_durable_before_writing_its_version()
    {
        using var f = new StoreFixture();
        var content = Tree.Random(3000, 5); // below the minimum chunk size: exactly one chunk
        // A tree ingest running beside us has written this chunk without the log and not flushed it yet.
        using (var codec = new ChunkCodec())
        using (var batch = f.Store.Sink.NewChunkBatch())
        {
            batch.Add(ChunkCodec.HashOf(content), codec.Encode(content));
            f.Store.Sink.WriteChunks(batch, logged: false);
        }
        Assert.True(f.Store.Sink.UnloggedChunksPending);

        var up = f.Temp.CreateSub("up");
        Tree.WriteFile(up, "same.bin"u8, content);
        var rec = f.NewRecording();
        var summary = new Ingester(f.Store).IngestPath(rec, up, "same.bin"u8.ToArray(), f.At(2));
        Assert.Equal(1, summary.Changed);
        Assert.Equal(0, summary.BytesStored); // deduplicated against the unlogged chunk ...
        Assert.False(f.Store.Sink.UnloggedChunksPending); // ... which was flushed before the version referencing it

        var crash = CrashImage(f, "crash");
        using var reader = RecordingStore.Open(crash, readOnly: true);
        var v = reader.LatestVersionOf(rec.Id, "same.bin"u8, f.At(2));
        Assert.NotNull(v);
        Assert.Equal(content, StoreFixture.Read(reader, v));
    }

    /// <summary>Copies the files of the fixture's open store once no flush or compaction is running.</summary>
    private static string CrashImage(StoreFixture f, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (f.Store.Db.GetProperty("rocksdb.num-running-flushes", f.Store.Chunks) != "0" ||
               f.Store.Db.GetProperty("rocksdb.num-running-compactions", f.Store.Chunks) != "0")
        {
            Assert.True(DateTime.UtcNow < deadline, "background work did not settle");
            Thread.Sleep(10);
        }
        var dst = f.Temp.CreateSub(name);
        foreach (var file in Directory.EnumerateFiles(f.StoreDir))
            if (Path.GetFileName(file) != "LOCK") File.Copy(file, Path.Combine(dst, Path.GetFileName(file)));
        return dst;
    }

    private static long LogBytes(string dir) => Directory.EnumerateFiles(dir, "*.log").Sum(p => new FileInfo(p).Length);

    /// <summary>Flips three bytes inside the file (not in its possibly torn last record).</summary>
    private static void FlipBytes(string file)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        for (int k = 1; k <= 3; k++)
        {
            fs.Position = fs.Length * k / 4;
            int b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0xA5));
        }
    }
}
