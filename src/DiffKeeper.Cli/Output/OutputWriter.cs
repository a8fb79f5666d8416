using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli.Output;

/// <summary>Buffered stdout: human lines, raw bytes, or one JSON object per line.</summary>
public sealed class OutputWriter(Stream stdout)
{
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private Utf8JsonWriter? _json;

    public void Line(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\n");
        stdout.Write(bytes);
    }

    public void Raw(ReadOnlySpan<byte> b) => stdout.Write(b);

    /// <summary>Writes one JSON object and a newline.</summary>
    public void Json(Action<Utf8JsonWriter> body)
    {
        _json ??= new Utf8JsonWriter(stdout, JsonOptions);
        _json.Reset(stdout);
        _json.WriteStartObject();
        body(_json);
        _json.WriteEndObject();
        _json.Flush();
        stdout.WriteByte((byte)'\n');
    }

    public void Flush() => stdout.Flush();
}

/// <summary>JSON field helpers shared by the verbs.</summary>
public static class JsonFields
{
    public static void PathFields(this Utf8JsonWriter w, string name, byte[]? path)
    {
        if (path == null)
        {
            w.WriteNull(name);
            w.WriteNull(name + "_b64");
            return;
        }
        w.WriteString(name, RawPath.Lossy(path));
        w.WriteString(name + "_b64", Convert.ToBase64String(path));
    }

    public static void Time(this Utf8JsonWriter w, string name, long? ns)
    {
        if (ns is long t) w.WriteString(name, Moments.Format(t));
        else w.WriteNull(name);
    }

    public static void StringOrNull(this Utf8JsonWriter w, string name, string? s)
    {
        if (s == null) w.WriteNull(name);
        else w.WriteString(name, s);
    }
}

/// <summary>Human formatting helpers.</summary>
public static class Human
{
    public static string Path(byte[] p) => "/" + RawPath.Escape(p);

    public static string Bytes(long n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = n;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{n} B" : $"{v:0.0} {units[u]}";
    }

    public static string Mode(uint mode) => "0" + Convert.ToString(mode & 0xfff, 8).PadLeft(3, '0');
}
