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
}
