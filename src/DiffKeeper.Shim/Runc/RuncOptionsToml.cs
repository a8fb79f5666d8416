using Tomlyn;
using Tomlyn.Parsing;

namespace DiffKeeper.Shim.Runc;

/// <summary>
/// The runc option names in a TOML document (a <c>runtimeoptions.v1.Options</c> config file or CRI's inline
/// body). Keys are the Go field names of <c>containerd.runc.v1.Options</c>, matched case-insensitively as Go's TOML
/// decoders match struct fields; a node's <c>[…runtimes.runc.options]</c> table can be copied as it is.
/// </summary>
internal static class RuncOptionsToml
{
    public static RuncOptions Parse(string text, string source)
    {
        var o = RuncOptions.None;
        try
        {
            // Tomlyn's streaming parser, not its serializer: only top-level keys matter here, and the serializer's
            // metadata would cost the Native AOT shim binary size and resident memory for nothing.
            var parser = TomlParser.Create(text);
            int depth = 0;       // tables/arrays open around the current event; 1 = the document's root table
            string? key = null;  // the last top-level key, waiting for its value
            while (parser.MoveNext())
            {
                var e = parser.Current;
                switch (e.Kind)
                {
                    case TomlParseEventKind.StartTable or TomlParseEventKind.StartArray:
                        if (depth == 1 && key != null) o = Apply(o, key, new NotScalar(e.Kind == TomlParseEventKind.StartTable ? "a table" : "an array"), source);
                        key = null;
                        depth++;
                        break;
                    case TomlParseEventKind.EndTable or TomlParseEventKind.EndArray:
                        depth--;
                        break;
                    case TomlParseEventKind.PropertyName:
                        key = depth == 1 ? parser.GetPropertyName() : null;
                        break;
                    case TomlParseEventKind.String or TomlParseEventKind.Integer or TomlParseEventKind.Float
                        or TomlParseEventKind.Boolean or TomlParseEventKind.DateTime:
                        if (key != null) o = Apply(o, key, Value(parser, e), source);
                        key = null;
                        break;
                }
            }
            if (parser.HasErrors) throw new TomlException(string.Join("; ", parser.Diagnostics));
        }
        catch (TomlException e)
        {
            throw new InvalidRuntimeOptionsException($"{source}: {e.Message}");
        }
        return o;
    }

    private static object Value(TomlParser parser, TomlParseEvent e) => e.Kind switch
    {
        TomlParseEventKind.String => parser.GetString() ?? "",
        TomlParseEventKind.Integer => e.GetInt64(),
        TomlParseEventKind.Boolean => e.GetBoolean(),
        TomlParseEventKind.Float => e.GetDouble(),
        _ => new NotScalar("a date/time"),
    };

    /// <summary>A value no runc option can take (a table, an array, a date).</summary>
    private sealed record NotScalar(string What);

    private static RuncOptions Apply(RuncOptions o, string key, object? value, string source) =>
        key.ToLowerInvariant() switch
        {
            "nopivotroot" => o with { NoPivotRoot = Bool(key, value, source) },
            "nonewkeyring" => o with { NoNewKeyring = Bool(key, value, source) },
            "shimcgroup" => o with { ShimCgroup = Str(key, value, source) },
            "iouid" => o with { IoUid = UInt(key, value, source) },
            "iogid" => o with { IoGid = UInt(key, value, source) },
            "binaryname" => o with { BinaryName = Str(key, value, source) },
            "root" => o with { Root = Str(key, value, source) },
            "criupath" => o with { CriuPath = Str(key, value, source) },
            "systemdcgroup" => o with { SystemdCgroup = Bool(key, value, source) },
            "criuimagepath" => o with { CriuImagePath = Str(key, value, source) },
            "criuworkpath" => o with { CriuWorkPath = Str(key, value, source) },
            _ => o, // not a runc option (CRI's body also holds TypeUrl, ConfigPath…)
        };

    private static bool Bool(string key, object? value, string source) =>
        value is bool b ? b : throw WrongType(key, "a boolean", value, source);

    private static string Str(string key, object? value, string source) =>
        value is string s ? s : throw WrongType(key, "a string", value, source);

    private static uint UInt(string key, object? value, string source) =>
        value is long n && n >= 0 && n <= uint.MaxValue ? (uint)n : throw WrongType(key, "an integer from 0 to 4294967295", value, source);

    private static InvalidRuntimeOptionsException WrongType(string key, string expected, object? value, string source) =>
        new($"{source}: {key} must be {expected}, not {Describe(value)}");

    private static string Describe(object? value) => value switch
    {
        null => "nothing",
        NotScalar n => n.What,
        string s => $"the string \"{s}\"",
        bool b => b ? "true" : "false",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
