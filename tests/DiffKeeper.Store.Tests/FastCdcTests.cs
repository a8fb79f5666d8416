using DiffKeeper.Store.Chunking;
using Xunit;

namespace DiffKeeper.Store.Tests;

public class FastCdcTests
{
    private static List<byte[]> Chunk(byte[] data)
    {
        var list = new List<byte[]>();
        int pos = 0;
        while (pos < data.Length)
        {
            int cut = FastCdc.Default.NextCut(data.AsSpan(pos), final: true);
            list.Add(data.AsSpan(pos, cut).ToArray());
            pos += cut;
        }
        return list;
    }

    [Fact]
    public void Chunk_sizes_stay_within_bounds_and_average_near_16KiB()
    {
        var data = Tree.Random(8 << 20, 1);
        var chunks = Chunk(data);
        Assert.All(chunks[..^1], c => Assert.InRange(c.Length, FastCdc.DefaultMin, FastCdc.DefaultMax));
        double avg = data.Length / (double)chunks.Count;
        Assert.InRange(avg, 10 * 1024, 24 * 1024);
        Assert.Equal(data, chunks.SelectMany(c => c).ToArray());
    }

    [Fact]
    public void An_insertion_changes_only_the_chunks_around_it()
    {
        var data = Tree.Random(4 << 20, 2);
        var inserted = data[..(2 << 20)].Concat(Tree.Random(100, 3)).Concat(data[(2 << 20)..]).ToArray();
        var before = Chunk(data).Select(c => Convert.ToHexString(ChunkCodec.HashOf(c).ToArray())).ToList();
        var after = Chunk(inserted).Select(c => Convert.ToHexString(ChunkCodec.HashOf(c).ToArray())).ToList();
        int changed = after.Count(h => !before.Contains(h));
        // Content-defined: boundaries resynchronise right after the edit (fixed-size blocks would change half).
        Assert.InRange(changed, 1, 3);
        Assert.True(before.Count - before.Count(h => after.Contains(h)) <= 3);
    }

    [Fact]
    public void Streaming_cuts_equal_whole_buffer_cuts()
    {
        // NextCut on a partial buffer must never decide a cut that more data would move.
        var data = Tree.Random(1 << 20, 4);
        var whole = Chunk(data).Select(c => c.Length).ToList();
        var streamed = new List<int>();
        int pos = 0, avail = 0;
        while (pos < data.Length)
        {
            avail = Math.Min(data.Length, avail + 5000);
            int cut;
            while ((cut = FastCdc.Default.NextCut(data.AsSpan(pos, avail - pos), avail == data.Length)) > 0)
            {
                streamed.Add(cut);
                pos += cut;
                if (pos == avail) break;
            }
        }
        Assert.Equal(whole, streamed);
    }

    [Fact]
    public void Cuts_equal_the_plain_definition_of_the_format()
    {
        // The cut points are part of the store format (dedup against stored chunks depends on them): the optimized
        // scanner must cut exactly where the plain definition does — a gear table from splitmix64 seeded with
        // "diffkeep", hash = (hash << 1) + gear[byte] from the minimum size on, the top (log2 avg + 2) bits clear
        // before the average size, the top (log2 avg - 2) bits after it, never past the maximum.
        var gear = new ulong[256];
        ulong seed = 0x6469_6666_6b65_6570UL;
        for (int i = 0; i < 256; i++)
        {
            seed += 0x9E3779B97F4A7C15UL;
            ulong z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            gear[i] = z ^ (z >> 31);
        }
        ulong strict = ~0UL << (64 - 16), loose = ~0UL << (64 - 12);
        int PlainCut(ReadOnlySpan<byte> d)
        {
            if (d.Length <= FastCdc.DefaultMin) return d.Length;
            int limit = Math.Min(d.Length, FastCdc.DefaultMax);
            ulong h = 0;
            for (int i = FastCdc.DefaultMin; i < limit; i++)
            {
                h = (h << 1) + gear[d[i]];
                if ((h & (i < FastCdc.DefaultAvg ? strict : loose)) == 0) return i + 1;
            }
            return limit;
        }
        // Random bytes, low-entropy runs and zeros: cuts in all three phases (strict, loose, forced at the maximum).
        var data = new byte[3 << 20];
        Tree.Random(1 << 20, 9).CopyTo(data, 0);
        for (int i = 1 << 20; i < 2 << 20; i++) data[i] = (byte)(data[i - (1 << 20)] & 7);
        for (int pos = 0; pos < data.Length;)
        {
            int want = PlainCut(data.AsSpan(pos));
            Assert.Equal(want, FastCdc.Default.NextCut(data.AsSpan(pos), final: true));
            pos += want;
        }
    }
}

public class ChunkHashTests
{
    [Fact]
    public void Chunk_addresses_are_sha256_before_and_after_the_switch_to_openssl()
    {
        // The first ManagedHashBytes of a process are hashed by managed code, the rest by OpenSSL: both must give
        // the same address (tests in this process may have used part of the budget already; 1 MiB crosses it).
        var random = new Random(31);
        long hashed = 0;
        for (int i = 0; hashed < 4 * ChunkCodec.ManagedHashBytes; i++)
        {
            var data = new byte[random.Next(0, 70_000)];
            random.NextBytes(data);
            var expected = System.Security.Cryptography.SHA256.HashData(data);
            var got = new byte[32];
            ChunkCodec.HashOf(data).CopyTo(got);
            Assert.True(expected.AsSpan().SequenceEqual(got), $"chunk {i} ({data.Length} bytes)");
            hashed += data.Length;
        }
    }
}
