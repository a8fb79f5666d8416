using System.Buffers.Binary;

namespace DiffKeeper.Store.Serialization;

/// <summary>Appends varints, fixed integers and length-prefixed byte strings to a growable buffer.</summary>
internal sealed class BinWriter
{
    private byte[] _buf;
    private int _len;

    public BinWriter(int capacity = 256) => _buf = new byte[capacity];

    public int Length => _len;
    public ReadOnlySpan<byte> Span => _buf.AsSpan(0, _len);
    public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();
    public void Clear() => _len = 0;

    private Span<byte> Grow(int n)
    {
        if (_len + n > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
        var s = _buf.AsSpan(_len, n);
        _len += n;
        return s;
    }

    public void U8(byte v) => Grow(1)[0] = v;

    public void VarU(ulong v)
    {
        while (v >= 0x80) { U8((byte)(v | 0x80)); v >>= 7; }
        U8((byte)v);
    }

    public void VarS(long v) => VarU((ulong)((v << 1) ^ (v >> 63)));
    public void I64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Grow(8), v);
    public void Raw(ReadOnlySpan<byte> b) => b.CopyTo(Grow(b.Length));

    public void Bytes(ReadOnlySpan<byte> b)
    {
        VarU((ulong)b.Length);
        Raw(b);
    }

    public void Str(string? s)
    {
        if (s == null) { VarU(0); return; }
        var n = System.Text.Encoding.UTF8.GetByteCount(s);
        VarU((ulong)n + 1);
        System.Text.Encoding.UTF8.GetBytes(s, Grow(n));
    }
}

/// <summary>Reads what <see cref="BinWriter"/> wrote; any overrun is corrupt data.</summary>
internal ref struct BinReader
{
    private readonly ReadOnlySpan<byte> _b;
    private int _pos;

    public BinReader(ReadOnlySpan<byte> b) { _b = b; _pos = 0; }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _b.Length) throw new CorruptDataException("record is truncated");
        var s = _b.Slice(_pos, n);
        _pos += n;
        return s;
    }

    public byte U8() => Take(1)[0];

    public ulong VarU()
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = U8();
            v |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
        throw new CorruptDataException("bad varint");
    }

    public long VarS() { var u = VarU(); return (long)(u >> 1) ^ -(long)(u & 1); }
    public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
    public ReadOnlySpan<byte> Raw(int n) => Take(n);
    public byte[] Bytes() => Take(checked((int)VarU())).ToArray();

    public string? Str()
    {
        var n = VarU();
        return n == 0 ? null : System.Text.Encoding.UTF8.GetString(Take(checked((int)(n - 1))));
    }
}
