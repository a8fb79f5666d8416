using System.Buffers.Binary;
using System.Numerics;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// SHA-256 (FIPS 180-4) for the socket address only. The runtime's SHA256 loads OpenSSL (libssl, libcrypto and
/// openssl.cnf: ~4 ms), and <c>start</c> sits on the critical path of every container start.
/// The round constants are derived exactly with integer roots instead of being typed in.
/// </summary>
internal static class Sha256
{
    private static readonly uint[] K = Constants(64, cubeRoot: true);
    private static readonly uint[] H0 = Constants(8, cubeRoot: false);

    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        var h = (uint[])H0.Clone();
        int paddedLength = (data.Length + 9 + 63) / 64 * 64;
        var message = new byte[paddedLength];
        data.CopyTo(message);
        message[data.Length] = 0x80;
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(paddedLength - 8), (ulong)data.Length * 8);

        Span<uint> w = stackalloc uint[64];
        for (int block = 0; block < paddedLength; block += 64)
        {
            for (int t = 0; t < 16; t++) w[t] = BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(block + t * 4));
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

        var digest = new byte[32];
        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteUInt32BigEndian(digest.AsSpan(i * 4), h[i]);
        return digest;
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
