using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Chunking;

/// <summary>
/// FastCDC content-defined chunking (Xia et al., 2016) with normalized chunking: a gear rolling hash, a stricter
/// mask before the average size and a looser one after it, so sizes cluster around the average.
/// The gear table is derived from a fixed seed: it is part of the store format (changing it breaks dedup
/// against existing data, never correctness).
/// </summary>
public sealed class FastCdc
{
    public const int DefaultMin = 4 * 1024, DefaultAvg = 16 * 1024, DefaultMax = 64 * 1024;

    private static readonly ulong[] Gear = BuildGear();
    private readonly ulong _maskStrict, _maskLoose;

    public int MinSize { get; }
    public int AvgSize { get; }
    public int MaxSize { get; }

    public static readonly FastCdc Default = new(DefaultMin, DefaultAvg, DefaultMax);

    public FastCdc(int min, int avg, int max)
    {
        if (!BitOperations.IsPow2(avg) || min >= avg || avg >= max) throw new ArgumentException("need min < avg (power of 2) < max");
        MinSize = min; AvgSize = avg; MaxSize = max;
        int bits = BitOperations.Log2((uint)avg);
        // The gear hash shifts left, so the high bits depend on the most bytes (up to 64): mask the top bits.
        _maskStrict = ~0UL << (64 - (bits + 2));
        _maskLoose = ~0UL << (64 - (bits - 2));
    }

    /// <summary>Length of the first chunk of <paramref name="data"/>; <paramref name="final"/> = no more data follows.</summary>
    /// <returns>The cut length, or 0 when more data is needed to decide (only when not final).</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int NextCut(ReadOnlySpan<byte> data, bool final)
    {
        int n = data.Length;
        if (n <= MinSize) return final ? n : 0;
        if (n < MaxSize && !final)
        {
            // Decide only with a full window available; otherwise a later read could move the cut.
            int cut = Scan(data, n);
            return cut < n ? cut : 0;
        }
        return Scan(data, Math.Min(n, MaxSize));
    }

    private int Scan(ReadOnlySpan<byte> data, int limit)
    {
        ulong hash = 0;
        int i = MinSize;
        ref byte d = ref MemoryMarshal.GetReference(data);
        int normal = Math.Min(AvgSize, limit);
        int cut = ScanRange(ref d, ref hash, ref i, normal, _maskStrict);
        if (cut > 0) return cut;
        cut = ScanRange(ref d, ref hash, ref i, limit, _maskLoose);
        return cut > 0 ? cut : limit;
    }

    /// <summary>
    /// Rolls the gear hash over bytes [i, end) and returns the cut after the first byte whose hash has the masked bits
    /// clear, or 0. The chunker's hot loop (a tenth of ingest CPU): unrolled by four, the table indexed without bounds
    /// checks (a byte always indexes the 256 entries) and the mask kept in a register; the hash chain itself is one
    /// <c>lea</c> per byte.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ScanRange(ref byte d, ref ulong hash, ref int i, int end, ulong mask)
    {
        ref ulong g = ref MemoryMarshal.GetArrayDataReference(Gear);
        ulong h = hash;
        int k = i;
        for (; k + 4 <= end; k += 4)
        {
            h = (h << 1) + Unsafe.Add(ref g, Unsafe.Add(ref d, k));
            if ((h & mask) == 0) return k + 1;
            h = (h << 1) + Unsafe.Add(ref g, Unsafe.Add(ref d, k + 1));
            if ((h & mask) == 0) return k + 2;
            h = (h << 1) + Unsafe.Add(ref g, Unsafe.Add(ref d, k + 2));
            if ((h & mask) == 0) return k + 3;
            h = (h << 1) + Unsafe.Add(ref g, Unsafe.Add(ref d, k + 3));
            if ((h & mask) == 0) return k + 4;
        }
        for (; k < end; k++)
        {
            h = (h << 1) + Unsafe.Add(ref g, Unsafe.Add(ref d, k));
            if ((h & mask) == 0) return k + 1;
        }
        hash = h;
        i = k;
        return 0;
    }

    private static ulong[] BuildGear()
    {
        var g = new ulong[256];
        ulong s = 0x6469_6666_6b65_6570UL; // "diffkeep"
        for (int i = 0; i < 256; i++)
        {
            // splitmix64
            s += 0x9E3779B97F4A7C15UL;
            ulong z = s;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            g[i] = z ^ (z >> 31);
        }
        return g;
    }
}
