using System.Text;

namespace DiffKeeper.Cli.Tests.Native;

/// <summary>
/// File names are bytes, not text. The tests carry them as Latin-1 strings (char i = byte i), which round-trips any
/// byte sequence and keeps ordinal string comparison equal to byte comparison.
/// </summary>
internal static class RawPath
{
    public static string FromBytes(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
    public static byte[] ToBytes(string raw) => Encoding.Latin1.GetBytes(raw);
    public static string FromUtf8(string text) => FromBytes(Encoding.UTF8.GetBytes(text));
    public static string ToBase64(string raw) => Convert.ToBase64String(ToBytes(raw));
    public static string FromBase64(string b64) => FromBytes(Convert.FromBase64String(b64));

    /// <summary>Printable form for messages: C-style escapes for control and non-ASCII bytes.</summary>
    public static string Display(string raw)
    {
        var sb = new StringBuilder(raw.Length + 8);
        foreach (char c in raw)
        {
            if (c == '\\') sb.Append("\\\\");
            else if (c == '\n') sb.Append("\\n");
            else if (c < 0x20 || c >= 0x7F) sb.Append($"\\x{(int)c:x2}");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    public static string Parent(string rel) { int i = rel.LastIndexOf('/'); return i < 0 ? "" : rel[..i]; }
    public static bool IsUnder(string rel, string ancestor) => rel.Length > ancestor.Length && rel.StartsWith(ancestor + "/", StringComparison.Ordinal);
    public static int Depth(string rel) => rel.Count(c => c == '/');
}
