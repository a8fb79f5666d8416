using System.Buffers.Binary;
using System.Numerics;

namespace DiffKeeper.Common.Hashing;

/// <summary>
/// SHA-256 (FIPS 180-4) in managed code, for processes that hash only a little: the runtime's SHA256 loads OpenSSL
/// (libssl, libcrypto and openssl.cnf), measured at ~4-5 ms — on the critical path of every container start (the
/// shim's socket address) and a quarter of a CLI `show`. OpenSSL (SHA-NI, ~1.4 GB/s here) stays the choice for bulk
/// hashing; this one does ~200 MB/s. The round constants are derived exactly with integer roots instead of being
/// typed in.
/// </summary>
public static class Sha256
{
    private static readonly uint[] K = Constants(64, cubeRoot: true);
    private static readonly uint[] H0 = Constants(8, cubeRoot: false);

    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        var digest = new byte[32];
        Hash(data, digest);
        return digest;
    }

    /// <summary>Writes the 32-byte digest of <paramref name="data"/> to <paramref name="digest"/>.</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> digest)
    {
        Span<uint> h = stackalloc uint[8];
        H0.CopyTo(h);
        Span<uint> w = stackalloc uint[64];
        int whole = data.Length / 64 * 64;
        for (int block = 0; block < whole; block += 64) Compress(h, w, data.Slice(block, 64));

        // The tail, the 0x80 marker and the bit length: one or two more blocks.
        Span<byte> tail = stackalloc byte[128];
        tail.Clear();
        int rest = data.Length - whole;
        data[whole..].CopyTo(tail);
        tail[rest] = 0x80;
        int tailLength = rest + 9 <= 64 ? 64 : 128;
        BinaryPrimitives.WriteUInt64BigEndian(tail[(tailLength - 8)..], (ulong)data.Length * 8);
        for (int block = 0; block < tailLength; block += 64) Compress(h, w, tail.Slice(block, 64));

        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteUInt32BigEndian(digest[(i * 4)..], h[i]);
    }

    private static void Compress(Span<uint> h, Span<uint> w, ReadOnlySpan<byte> block)
    {
        for (int t = 0; t < 16; t++) w[t] = BinaryPrimitives.ReadUInt32BigEndian(block[(t * 4)..]);
        for (int t = 16; t < 64; t++)
        {
            uint s0 = BitOperations.RotateRight(w[t - 15], 7) ^ BitOperations.RotateRight(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint s1 = BitOperations.RotateRight(w[t - 2], 17) ^ BitOperations.RotateRight(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int t = 0; t < 64; t++)
        {
            uint sum1 = BitOperations.RotateRight(e, 6) ^ BitOperations.RotateRight(e, 11) ^ BitOperations.RotateRight(e, 25);
            uint choose = (e & f) ^ (~e & g);
            uint t1 = hh + sum1 + choose + K[t] + w[t];
            uint sum0 = BitOperations.RotateRight(a, 2) ^ BitOperations.RotateRight(a, 13) ^ BitOperations.RotateRight(a, 22);
            uint majority = (a & b) ^ (a & c) ^ (b & c);
            uint t2 = sum0 + majority;
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }

    /// <summary>The first 32 fractional bits of the square (H0) or cube (K) roots of the first primes.</summary>
    private static uint[] Constants(int count, bool cubeRoot)
    {
        var result = new uint[count];
        int found = 0;
        for (uint candidate = 2; found < count; candidate++)
        {
            if (!IsPrime(candidate)) continue;
            // floor(root(p) * 2^32) = integer root of p * 2^(32*degree); its low 32 bits are the fraction.
            UInt128 scaled = cubeRoot ? (UInt128)candidate << 96 : (UInt128)candidate << 64;
            result[found++] = (uint)IntegerRoot(scaled, cubeRoot ? 3 : 2);
        }
        return result;
    }

    private static UInt128 IntegerRoot(UInt128 n, int degree)
    {
        UInt128 low = 0, high = (UInt128)1 << (degree == 3 ? 36 : 41);
        while (low < high)
        {
            UInt128 mid = (low + high + 1) >> 1;
            UInt128 power = degree == 3 ? mid * mid * mid : mid * mid;
            if (power <= n) low = mid; else high = mid - 1;
        }
        return low;
    }

    private static bool IsPrime(uint n)
    {
        for (uint d = 2; d * d <= n; d++) if (n % d == 0) return false;
        return true;
    }
}
