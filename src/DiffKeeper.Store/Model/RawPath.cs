using System.Text;

namespace DiffKeeper.Store.Model;

/// <summary>
/// Helpers for paths kept as raw bytes. <see cref="Key"/> maps bytes 1:1 to chars (Latin-1) so a path can be a
/// dictionary key or sort key without decoding it.
/// </summary>
public static class RawPath
{
    public static string Key(ReadOnlySpan<byte> path) => Encoding.Latin1.GetString(path);

    /// <summary>Parent directory ("" for a top-level entry).</summary>
    public static ReadOnlySpan<byte> Parent(ReadOnlySpan<byte> path)
    {
        int i = path.LastIndexOf((byte)'/');
        return i < 0 ? ReadOnlySpan<byte>.Empty : path[..i];
    }

    public static ReadOnlySpan<byte> Name(ReadOnlySpan<byte> path)
    {
        int i = path.LastIndexOf((byte)'/');
        return i < 0 ? path : path[(i + 1)..];
    }

    public static byte[] Join(ReadOnlySpan<byte> dir, ReadOnlySpan<byte> name)
    {
        if (dir.Length == 0) return name.ToArray();
        var b = new byte[dir.Length + 1 + name.Length];
        dir.CopyTo(b);
        b[dir.Length] = (byte)'/';
        name.CopyTo(b.AsSpan(dir.Length + 1));
        return b;
    }

    /// <summary>
    /// Command-line bytes as a string without loss: valid UTF-8 decodes normally, every other byte b becomes the
    /// lone surrogate U+DC00+b (Python's "surrogateescape"). <see cref="EncodeArg"/> turns it back into the bytes.
    /// </summary>
    public static string DecodeArg(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        int i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out var rune, out int used) == System.Buffers.OperationStatus.Done)
            {
                sb.Append(rune.ToString());
                i += used;
            }
            else
            {
                sb.Append((char)(0xDC00 + bytes[i]));
                i++;
            }
        }
        return sb.ToString();
    }

    /// <summary>The bytes a command-line string stood for (see <see cref="DecodeArg"/>).</summary>
    public static byte[] EncodeArg(string s)
    {
        bool escaped = false;
        foreach (var c in s) if (c >= 0xDC80 && c <= 0xDCFF) { escaped = true; break; }
        if (!escaped) return Encoding.UTF8.GetBytes(s);
        var ms = new MemoryStream(s.Length + 8);
        Span<byte> buf = stackalloc byte[4];
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c >= 0xDC80 && c <= 0xDCFF) { ms.WriteByte((byte)(c - 0xDC00)); continue; }
            int n;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                n = new Rune(c, s[i + 1]).EncodeToUtf8(buf);
                i++;
            }
            else n = (Rune.IsValid(c) ? new Rune(c) : Rune.ReplacementChar).EncodeToUtf8(buf);
            ms.Write(buf[..n]);
        }
        return ms.ToArray();
    }

    /// <summary>A user-typed path ("/etc/passwd", "etc/passwd/") as stored bytes: relative, no trailing slash.</summary>
    public static byte[] FromUser(string s)
    {
        var b = EncodeArg(s).AsSpan();
        while (b.Length > 0 && b[0] == '/') b = b[1..];
        while (b.Length > 0 && b[^1] == '/') b = b[..^1];
        return b.ToArray();
    }

    /// <summary>Lossy UTF-8 for display in JSON.</summary>
    public static string Lossy(ReadOnlySpan<byte> path) => Encoding.UTF8.GetString(path);

    public static int Compare(byte[] a, byte[] b) => a.AsSpan().SequenceCompareTo(b);

    /// <summary>
    /// C-style escaping so one path is one line: \n \t \\ and \xNN for control characters and bytes that are
    /// not valid UTF-8. Valid non-ASCII UTF-8 passes through.
    /// </summary>
    public static string Escape(ReadOnlySpan<byte> path)
    {
        var sb = new StringBuilder(path.Length + 8);
        int i = 0;
        while (i < path.Length)
        {
            byte b = path[i];
            if (b < 0x80)
            {
                switch (b)
                {
                    case (byte)'\n': sb.Append("\\n"); break;
                    case (byte)'\t': sb.Append("\\t"); break;
                    case (byte)'\r': sb.Append("\\r"); break;
                    case (byte)'\\': sb.Append("\\\\"); break;
                    default:
                        if (b < 0x20 || b == 0x7f) sb.Append("\\x").Append(b.ToString("x2"));
                        else sb.Append((char)b);
                        break;
                }
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf8(path[i..], out var rune, out int used) == System.Buffers.OperationStatus.Done)
            {
                sb.Append(rune.ToString());
                i += used;
            }
            else
            {
                sb.Append("\\x").Append(b.ToString("x2"));
                i++;
            }
        }
        return sb.ToString();
    }
}
