using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Model;

/// <summary>A SHA-256 value as a value type: cheap to keep millions of in a HashSet during gc.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct Hash256 : IEquatable<Hash256>
{
    public const int Size = 32;
    private readonly ulong _a, _b, _c, _d;

    public Hash256(ReadOnlySpan<byte> bytes)
    {
        _a = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
    }

    public bool IsZero => (_a | _b | _c | _d) == 0;

    public void CopyTo(Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dest, _a);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[8..], _b);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[16..], _c);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[24..], _d);
    }

    public byte[] ToArray()
    {
        var b = new byte[Size];
        CopyTo(b);
        return b;
    }

    public bool Equals(Hash256 o) => _a == o._a && _b == o._b && _c == o._c && _d == o._d;
    public override bool Equals(object? obj) => obj is Hash256 h && Equals(h);
    public override int GetHashCode() => (int)_a ^ (int)(_a >> 32);
    public override string ToString() => Convert.ToHexStringLower(ToArray());
    public static bool operator ==(Hash256 x, Hash256 y) => x.Equals(y);
    public static bool operator !=(Hash256 x, Hash256 y) => !x.Equals(y);
}
