using System.Text;

namespace DiffKeeper.Shim.IntegrationTests.Wire;

/// <summary>One decoded protobuf field: varints keep their value, length-delimited fields their bytes.</summary>
public readonly record struct ProtoField(int Number, int WireType, ulong Varint, ReadOnlyMemory<byte> Bytes)
{
    public string String => Encoding.UTF8.GetString(Bytes.Span);
}

/// <summary>
/// Just enough protobuf to read ttrpc envelopes and a few containerd messages in tests. Written independently of
/// the product's code on purpose, so a wire bug cannot hide behind a shared decoder.
/// </summary>
public static class ProtoReader
{
    public static List<ProtoField> Parse(ReadOnlyMemory<byte> message)
    {
        var fields = new List<ProtoField>();
        var span = message.Span;
        var pos = 0;
        while (pos < span.Length)
        {
            var key = ReadVarint(span, ref pos);
            var number = (int)(key >> 3);
            var wire = (int)(key & 7);
            switch (wire)
            {
                case 0: fields.Add(new ProtoField(number, wire, ReadVarint(span, ref pos), default)); break;
                case 1: fields.Add(new ProtoField(number, wire, BitConverter.ToUInt64(span.Slice(pos, 8)), message.Slice(pos, 8))); pos += 8; break;
                case 2:
                    var len = (int)ReadVarint(span, ref pos);
                    fields.Add(new ProtoField(number, wire, 0, message.Slice(pos, len)));
                    pos += len;
                    break;
                case 5: fields.Add(new ProtoField(number, wire, BitConverter.ToUInt32(span.Slice(pos, 4)), message.Slice(pos, 4))); pos += 4; break;
                default: throw new FormatException($"unsupported wire type {wire} for field {number}");
            }
        }
        return fields;
    }

    public static ProtoField? First(this List<ProtoField> fields, int number) =>
        fields.FirstOrDefault(f => f.Number == number) is { Number: > 0 } f ? f : null;

    private static ulong ReadVarint(ReadOnlySpan<byte> span, ref int pos)
    {
        ulong result = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = span[pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
    }
}

/// <summary>Builds protobuf messages field by field.</summary>
public sealed class ProtoWriter
{
    private readonly MemoryStream _buffer = new();

    public ProtoWriter Varint(int number, ulong value)
    {
        WriteRawVarint(((ulong)number << 3) | 0);
        WriteRawVarint(value);
        return this;
    }

    public ProtoWriter Bytes(int number, ReadOnlySpan<byte> value)
    {
        WriteRawVarint(((ulong)number << 3) | 2);
        WriteRawVarint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtoWriter String(int number, string value) => Bytes(number, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Message(int number, ProtoWriter nested) => Bytes(number, nested.ToArray());

    public byte[] ToArray() => _buffer.ToArray();

    private void WriteRawVarint(ulong v)
    {
        while (v >= 0x80)
        {
            _buffer.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }
        _buffer.WriteByte((byte)v);
    }
}
