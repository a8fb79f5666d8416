using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Maintenance;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Pack;
using DiffKeeper.Store.Query;
using DiffKeeper.Store.Rocks;
using Xunit;

namespace DiffKeeper.Store.Tests;

/// <summary>
/// Chunk deltas (codec 2): a chunk that replaces one of the file's previous version is stored as a zstd frame
/// against that chunk's raw bytes. Reads verify the result (and every base) against SHA-256; chains are bounded;
/// gc, doctor and pack treat a base as needed by its delta.
/// </summary>
public class DeltaChunkTests
{
    /// <summary>An in-memory chunk source for codec-level tests.</summary>
    private sealed class MemorySource : IChunkSource
    {
        public readonly Dictionary<Hash256, byte[]> Values = [];

        public bool TryUseChunk<TState>(Hash256 h, ref TState state, SpanUser<TState> use)
        {
            if (!Values.TryGetValue(h, out var v)) return false;
            use(v, ref state);
            return true;
        }

        public bool HasChunk(Hash256 h) => Values.ContainsKey(h);
    }

    private static byte[] Edited(byte[] data, int offset, int length, int seed)
    {
        var copy = (byte[])data.Clone();
        Tree.Random(length, seed).CopyTo(copy, offset);
        return copy;
    }

    [Fact]
    public void A_delta_round_trips_only_when_it_pays_and_its_result_is_checked_against_the_hash()
    {
        using var codec = new ChunkCodec();
        var src = new MemorySource();
        var baseRaw = Tree.Random(16 << 10, 1);
        var baseHash = ChunkCodec.HashOf(baseRaw);
        src.Values[baseHash] = codec.Encode(baseRaw).ToArray();

        var raw = Edited(baseRaw, 5000, 24, 2);
        var h = ChunkCodec.HashOf(raw);
        var stored = codec.Encode(raw, baseHash, baseRaw, 0, out bool delta).ToArray();
        Assert.True(delta);
        Assert.Equal(ChunkCodec.Delta, stored[0]);
        Assert.Equal(1, ChunkCodec.DepthOf(stored));
        Assert.True(ChunkCodec.TryGetBase(stored, out var b) && b == baseHash);
        Assert.InRange(stored.Length, ChunkCodec.DeltaHeaderSize, 200); // 16 KiB of noise as a few dozen bytes

        var dest = new byte[FastCdc.DefaultMax];
        Assert.Equal(raw.Length, codec.DecodeVerified(h, stored, dest, src));
        Assert.True(dest.AsSpan(0, raw.Length).SequenceEqual(raw));

        // Without a source to read the base from, a delta is an error, not garbage.
        Assert.Throws<CorruptDataException>(() => codec.DecodeVerified(h, stored, dest));
        // A base whose stored bytes are not what its hash says is refused before the delta is applied to it.
        src.Values[baseHash] = codec.Encode(Edited(baseRaw, 5000, 24, 3)).ToArray();
        var e = Assert.Throws<CorruptDataException>(() => codec.DecodeVerified(h, stored, dest, src));
        Assert.Contains(baseHash.ToString(), e.Message);

        // Unrelated content: a delta would not be clearly smaller, so the chunk is stored whole.
        var unrelated = Tree.Random(16 << 10, 4);
        var whole = codec.Encode(unrelated, baseHash, baseRaw, 0, out delta);
        Assert.False(delta);
        Assert.Equal(0, ChunkCodec.DepthOf(whole));
    }

    [Fact]
    public void A_chain_deeper_than_the_bound_or_a_cycle_is_corrupt_and_the_writer_never_builds_one()
    {
        using var codec = new ChunkCodec();
        var src = new MemorySource();
        var raw = Tree.Random(16 << 10, 7);
        var hashes = new List<Hash256> { ChunkCodec.HashOf(raw) };
        src.Values[hashes[0]] = codec.Encode(raw).ToArray();
        int depth = 0;
        for (int i = 1; i <= ChunkCodec.MaxDeltaDepth + 1; i++)
        {
            var next = Edited(raw, 100 * i, 8, 100 + i);
            var stored = codec.Encode(next, hashes[^1], raw, depth, out bool delta).ToArray();
            // The writer stops the chain at the bound: the chunk after a depth-MaxDeltaDepth base is whole.
            Assert.Equal(i <= ChunkCodec.MaxDeltaDepth, delta);
            depth = ChunkCodec.DepthOf(stored);
            Assert.Equal(i <= ChunkCodec.MaxDeltaDepth ? i : 0, depth);
            raw = next;
            hashes.Add(ChunkCodec.HashOf(raw));
            src.Values[hashes[^1]] = stored;
        }
        var dest = new byte[FastCdc.DefaultMax];
        Assert.Equal(raw.Length, codec.DecodeVerified(hashes[^1], src.Values[hashes[^1]], dest, src));
        int deepest = ChunkCodec.MaxDeltaDepth;
        Assert.Equal(16 << 10, codec.DecodeVerified(hashes[deepest], src.Values[hashes[deepest]], dest, src));

        // A damaged depth byte beyond the bound, or a delta that names itself as its base, ends in an error.
        var tooDeep = (byte[])src.Values[hashes[1]].Clone();
        tooDeep[ChunkCodec.HeaderSize] = ChunkCodec.MaxDeltaDepth + 1;
        Assert.Throws<CorruptDataException>(() => codec.DecodeVerified(hashes[1], tooDeep, dest, src));
        var cycle = (byte[])src.Values[hashes[1]].Clone();
        hashes[1].CopyTo(cycle.AsSpan(ChunkCodec.HeaderSize + 1));
        src.Values[hashes[1]] = cycle;
        var e = Assert.Throws<CorruptDataException>(() => codec.DecodeVerified(hashes[1], cycle, dest, src));
        Assert.Contains("deeper", e.Message);
    }

    /// <summary>A 200 KB random file (about a dozen chunks), then versions with small edits.</summary>
    private sealed class EditedFile : IDisposable
    {
        public readonly StoreFixture F = new();
        public readonly string Up;
        public readonly RecordingInfo Rec;
        public readonly List<byte[]> Contents = [];
        public int Moments;

        public EditedFile(string name = "rec")
        {
            Up = F.Temp.CreateSub("up");
            Rec = F.NewRecording(name);
            Write(Tree.Random(200_000, 11));
        }

        public void Write(byte[] content)
        {
            Tree.WriteFile(Up, "f.bin"u8, content);
            Contents.Add(content);
            F.Snapshot(Rec, Up, Moments++);
        }

        public FileVersion Version(int moment) => StateQuery.Find(F.Store, Rec.Id, "f.bin"u8, F.At(moment))!;

        public List<Hash256> NewChunks(int moment)
        {
            var before = Version(moment - 1).Chunks.Select(c => c.Hash).ToHashSet();
            return Version(moment).Chunks.Select(c => c.Hash).Where(h => !before.Contains(h)).ToList();
        }

        public void Dispose() => F.Dispose();
    }

    [Fact]
    public void Edited_chunks_are_stored_as_deltas_also_after_an_insertion_shifted_the_file_and_read_back_exactly()
    {
        using var e = new EditedFile();
        // An overwrite in place: the chunk covering it is new, its predecessor is at the same offset.
        e.Write(Edited(e.Contents[^1], 100_000, 16, 12));
        // An insertion early in the file shifts every later offset; an overwrite far after it must still find its
        // predecessor (the two versions are aligned at the chunks they share, not by plain offset).
        var c = e.Contents[^1];
        var inserted = c[..40_000].Concat(Tree.Random(100, 13)).Concat(c[40_000..]).ToArray();
        e.Write(Edited(inserted, 170_000, 16, 14));

        long deltas = 0;
        for (int m = 1; m < e.Moments; m++)
        {
            var fresh = e.NewChunks(m);
            Assert.NotEmpty(fresh);
            foreach (var h in fresh)
                if (ChunkCodec.DepthOf(e.F.Store.GetStoredChunk(h)!) > 0) deltas++;
            Assert.True(fresh.All(h => ChunkCodec.DepthOf(e.F.Store.GetStoredChunk(h)!) > 0),
                $"moment {m}: a replaced chunk of incompressible data was stored whole");
        }
        Assert.True(deltas >= 3);
        for (int m = 0; m < e.Moments; m++) Assert.Equal(e.Contents[m], e.F.Read(e.Version(m)));
        Assert.True(Doctor.Check(e.F.Store).Healthy);

        // The single-path capture (what the daemon calls while the container runs) stores deltas too.
        var next = Edited(e.Contents[^1], 60_000, 16, 15);
        Tree.WriteFile(e.Up, "f.bin"u8, next);
        new Ingester(e.F.Store).IngestPath(e.Rec, e.Up, "f.bin"u8.ToArray(), e.F.At(e.Moments));
        e.Contents.Add(next);
        e.Moments++;
        Assert.Contains(e.NewChunks(e.Moments - 1), h => ChunkCodec.DepthOf(e.F.Store.GetStoredChunk(h)!) > 0);
        Assert.Equal(next, e.F.Read(e.Version(e.Moments - 1)));
    }

    [Fact]
    public void The_same_chunk_edited_again_and_again_never_chains_past_the_bound()
    {
        using var e = new EditedFile();
        for (int i = 0; i < 3 * ChunkCodec.MaxDeltaDepth; i++) e.Write(Edited(e.Contents[^1], 100_000 + 8 * i, 8, 20 + i));
        int whole = 0, maxDepth = 0;
        for (int m = 1; m < e.Moments; m++)
        {
            var fresh = Assert.Single(e.NewChunks(m));
            int depth = ChunkCodec.DepthOf(e.F.Store.GetStoredChunk(fresh)!);
            maxDepth = Math.Max(maxDepth, depth);
            if (depth == 0) whole++;
            Assert.Equal(e.Contents[m], e.F.Read(e.Version(m)));
        }
        Assert.Equal(ChunkCodec.MaxDeltaDepth, maxDepth);
        Assert.True(whole >= 2, $"{whole} whole chunks in {e.Moments - 1} edits of one chunk: the chain was not restarted");
    }

    [Fact]
    public void A_damaged_delta_or_base_and_a_missing_base_are_errors_on_read_and_in_doctor()
    {
        using var e = new EditedFile();
        e.Write(Edited(e.Contents[^1], 100_000, 16, 31));
        var deltaHash = Assert.Single(e.NewChunks(1));
        var delta = e.F.Store.GetStoredChunk(deltaHash)!;
        Assert.True(ChunkCodec.TryGetBase(delta, out var baseHash));
        var baseValue = e.F.Store.GetStoredChunk(baseHash)!;
        var store = e.F.Store;
        void Put(Hash256 h, byte[] v) => store.Db.Put(h.ToArray(), v, store.Chunks, store.Write);

        // A flipped byte in the delta's frame.
        var bad = (byte[])delta.Clone();
        bad[^1] ^= 0x10;
        Put(deltaHash, bad);
        Assert.Throws<CorruptDataException>(() => e.F.Read(e.Version(1)));
        Assert.Contains(Doctor.Check(store).Problems, p => p.Contains(deltaHash.ToString()));
        Put(deltaHash, delta);
        Assert.Equal(e.Contents[1], e.F.Read(e.Version(1)));

        // A flipped byte in the base: both versions fail, neither is shown wrong.
        var badBase = (byte[])baseValue.Clone();
        badBase[^1] ^= 0x10;
        Put(baseHash, badBase);
        Assert.Throws<CorruptDataException>(() => e.F.Read(e.Version(0)));
        var ex = Assert.Throws<CorruptDataException>(() => e.F.Read(e.Version(1)));
        Assert.Contains(baseHash.ToString(), ex.Message);

        // The base gone: the delta cannot be read, and doctor says which base is missing.
        store.Db.Remove(baseHash.ToArray(), store.Chunks, store.Write);
        ex = Assert.Throws<CorruptDataException>(() => e.F.Read(e.Version(1)));
        Assert.Contains("missing", ex.Message);
        Assert.Contains(Doctor.Check(store).Problems, p => p.Contains(baseHash.ToString()) && p.Contains("missing"));
    }

    [Fact]
    public void Gc_keeps_a_base_only_a_delta_needs_and_a_pack_carries_it()
    {
        using var e = new EditedFile("old");
        Tree.WriteFile(e.Up, "only-old.bin"u8, Tree.Random(50_000, 40)); // nothing else needs these chunks
        e.Write(Edited(e.Contents[^1], 100_000, 16, 41));
        var deltaHash = Assert.Single(e.NewChunks(1));
        Assert.True(ChunkCodec.TryGetBase(e.F.Store.GetStoredChunk(deltaHash)!, out var baseHash));

        // A newer recording holds only the edited content: it dedups against the delta chunk and never names the base.
        var store = e.F.Store;
        var newer = store.CreateRecording(new RecordingInfo { Name = "new", Start = e.F.At(100) });
        var up2 = e.F.Temp.CreateSub("up2");
        Tree.WriteFile(up2, "f.bin"u8, e.Contents[1]);
        new Ingester(store).IngestTree(newer, up2, e.F.At(101));
        var v = StateQuery.Find(store, newer.Id, "f.bin"u8, e.F.At(101))!;
        Assert.Contains(v.Chunks, c => c.Hash == deltaHash);
        Assert.DoesNotContain(v.Chunks, c => c.Hash == baseHash);

        // The pack of the newer recording must carry the base, or its file could not be read anywhere else.
        var file = Path.Combine(e.F.Temp.Path, "new.dkpack");
        PackWriter.Write(store, store.GetRecording(newer.Id)!, file);
        var (packed, rec) = PackReader.Open(file);
        using (packed)
        {
            Assert.True(packed.HasChunk(baseHash));
            Assert.Equal(e.Contents[1], StoreFixture.Read(packed, StateQuery.Find(packed, rec.Id, "f.bin"u8, e.F.At(101))!));
        }

        var result = GarbageCollector.Run(store, new RetentionPolicy { KeepLast = 1 });
        Assert.Equal("old", Assert.Single(result.Dropped).Name);
        Assert.True(result.ChunksRemoved > 0, "gc removed nothing: the old recording's own chunks should have gone");
        Assert.True(store.HasChunk(baseHash), "gc removed a base that a live delta needs");
        Assert.Equal(e.Contents[1], e.F.Read(StateQuery.Find(store, newer.Id, "f.bin"u8, e.F.At(101))!));
        var report = Doctor.Check(store);
        Assert.True(report.Healthy, string.Join("; ", report.Problems));
        Assert.Equal(0, report.UnreferencedChunks); // a base a delta needs is not "unreferenced"
    }
}
