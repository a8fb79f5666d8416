using Tomlyn;
using Tomlyn.Model;

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
        TomlTable table;
        try
        {
            table = TomlSerializer.Deserialize<TomlTable>(text, RuncOptionsTomlContext.Default.TomlTable)
                ?? new TomlTable();
        }
        catch (TomlException e)
        {
            throw new InvalidRuntimeOptionsException($"{source}: {e.Message}");
        }

        var o = RuncOptions.None;
        foreach (var (key, value) in table)
        {
            o = key.ToLowerInvariant() switch
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
        }
        return o;
    }

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
        string s => $"the string \"{s}\"",
        bool b => b ? "true" : "false",
        TomlTable => "a table",
        TomlArray => "an array",
        _ => value.ToString() ?? value.GetType().Name,
    };
}

/// <summary>Source-generated TOML metadata: the shim is Native AOT, where Tomlyn's reflection path is off.</summary>
[Tomlyn.Serialization.TomlSerializable(typeof(TomlTable))]
internal partial class RuncOptionsTomlContext : Tomlyn.Serialization.TomlSerializerContext
{
}
