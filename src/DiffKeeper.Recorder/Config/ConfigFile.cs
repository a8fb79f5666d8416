using System.Globalization;
using Tomlyn;
using Tomlyn.Model;

namespace DiffKeeper.Recorder.Config;

/// <summary>A config file that cannot be used: the message names the file, and the line/column or the key.</summary>
internal sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// Reads /etc/diffkeeper/config.toml into a <see cref="DaemonConfig"/>. Tomlyn's untyped model (TomlTable) is
/// walked by hand: no reflection-based binding (the daemon is Native AOT), and an unknown key is an error that
/// names it, so a typo never silently leaves a default in force.
/// </summary>
/// <example>
/// store = "/var/lib/diffkeeper"
/// socket = "/run/diffkeeper/diffkeeperd.sock"
/// spool_dir = ""                      # "" = &lt;store&gt;/spool
/// frame = "100ms"
/// metrics_address = "127.0.0.1:9464"  # "" = off
/// bpf_object = ""
/// push = "registry.example/recordings"  # or a table: [push] repository, when = "failure"|"always", plain_http
/// [retention]
/// keep = "always"                     # or "failure"
/// [limits]
/// max_file_size = "256MiB"            # largest file read live; 0 = no limit
/// max_containers = 256
/// capture_inodes = 65536              # kernel dirty set: inodes changed within one frame
/// [ingest]
/// paced_rate = "64MiB"                # per second, for an exit state while other containers run; 0 = never paced
/// max_paced_delay = "60s"             # one exit ingest is held back at most this long in total
/// </example>
internal static class ConfigFile
{
    public static void Apply(DaemonConfig config, string file, string text)
    {
        // Syntax first: its diagnostics carry the exact line and column of the first error.
        var syntax = Tomlyn.Parsing.SyntaxParser.Parse(text, file, validate: true);
        foreach (var d in syntax.Diagnostics)
        {
            if (d.Kind != Tomlyn.Syntax.DiagnosticMessageKind.Error) continue;
            throw new ConfigException($"{file}:{d.Span.Start.Line + 1}:{d.Span.Start.Column + 1}: {d.Message}");
        }
        TomlTable model;
        try
        {
            model = TomlSerializer.Deserialize(text, ConfigTomlContext.Default.TomlTable) ?? new TomlTable();
        }
        catch (TomlException e)
        {
            var where = e.Line is int line ? $":{line}:{e.Column ?? 0}" : "";
            throw new ConfigException($"{file}{where}: {FirstLine(e.Message)}");
        }
        foreach (var (key, value) in model)
        {
            switch (key)
            {
                case "store": config.Store = NonEmpty(file, key, Str(file, key, value)); break;
                case "socket": config.Socket = NonEmpty(file, key, Str(file, key, value)); break;
                case "spool_dir": config.SpoolDir = Str(file, key, value); break;
                case "frame": config.Frame = Frame(file, key, value); break;
                case "metrics_address": config.MetricsAddress = Str(file, key, value); break;
                case "bpf_object": config.BpfObject = Str(file, key, value) is { Length: > 0 } b ? b : null; break;
                case "push": PushConfig(config, file, value); break;
                case "retention":
                    foreach (var (k, v) in Table(file, key, value))
                    {
                        if (k != "keep") throw Unknown(file, key + "." + k);
                        config.Keep = Keep(file, "retention.keep", Str(file, "retention.keep", v));
                    }
                    break;
                case "limits":
                    foreach (var (k, v) in Table(file, key, value))
                    {
                        switch (k)
                        {
                            case "max_file_size": config.MaxLiveFileSize = Size(file, "limits." + k, v); break;
                            case "max_containers":
                                long n = Int(file, "limits." + k, v);
                                if (n < 1 || n > 100_000) throw new ConfigException($"{file}: limits.max_containers must be between 1 and 100000, not {n}");
                                config.MaxContainers = (int)n;
                                break;
                            case "capture_inodes":
                                long ci = Int(file, "limits." + k, v);
                                if (ci < 1 || ci > 16_777_216) throw new ConfigException($"{file}: limits.capture_inodes must be between 1 and 16777216, not {ci}");
                                config.CaptureInodes = (int)ci;
                                break;
                            default: throw Unknown(file, key + "." + k);
                        }
                    }
                    break;
                case "ingest":
                    foreach (var (k, v) in Table(file, key, value))
                    {
                        switch (k)
                        {
                            case "paced_rate": config.PacedRate = Size(file, "ingest." + k, v); break;
                            case "max_paced_delay":
                                if (v is not string d || !Durations.TryParse(d, out var t) || t > TimeSpan.FromHours(1))
                                    throw new ConfigException($"{file}: ingest.max_paced_delay must be a duration such as \"60s\" (at most 1h), not {Describe(v)}");
                                config.MaxPacedDelay = t;
                                break;
                            default: throw Unknown(file, key + "." + k);
                        }
                    }
                    break;
                default: throw Unknown(file, key);
            }
        }
    }

    /// <summary>push = "REGISTRY/REPO", or [push] repository = …, when = "failure"|"always", plain_http = bool.</summary>
    private static void PushConfig(DaemonConfig config, string file, object value)
    {
        if (value is TomlTable t)
        {
            foreach (var (k, v) in t)
            {
                switch (k)
                {
                    case "repository": config.Push = PushRepository(file, "push.repository", Str(file, "push.repository", v)); break;
                    case "when": config.PushWhen = Keep(file, "push.when", Str(file, "push.when", v)); break;
                    case "plain_http": config.PushPlainHttp = v as bool? ?? throw new ConfigException($"{file}: push.plain_http must be true or false, not {Describe(v)}"); break;
                    default: throw Unknown(file, "push." + k);
                }
            }
            if (config.Push is null) throw new ConfigException($"{file}: [push] needs repository = \"REGISTRY/REPO\"");
        }
        else config.Push = PushRepository(file, "push", Str(file, "push", value));
    }

    /// <summary>HOST[:PORT]/REPO as a distribution repository name allows (no tag: each recording gets its own).</summary>
    private static string PushRepository(string file, string key, string v)
    {
        if (v.StartsWith("oci://", StringComparison.Ordinal)) v = v[6..];
        if (!System.Text.RegularExpressions.Regex.IsMatch(v, @"^[A-Za-z0-9.\-]+(:[0-9]+)?/[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$"))
            throw new ConfigException($"{file}: {key} must be REGISTRY/REPOSITORY (e.g. \"registry.example/recordings\"), not \"{v}\"");
        return v;
    }

    public static string Keep(string source, string key, string value) => value switch
    {
        "always" or "failure" => value,
        _ => throw new ConfigException($"{source}: {key} must be \"always\" or \"failure\", not \"{value}\""),
    };

    private static string FirstLine(string s)
    {
        int i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).Trim();
    }

    private static ConfigException Unknown(string file, string key) =>
        new($"{file}: unknown key \"{key}\" (known: store, socket, spool_dir, frame, metrics_address, bpf_object, retention.keep, limits.max_file_size, limits.max_containers, limits.capture_inodes, ingest.paced_rate, ingest.max_paced_delay)");

    private static string Str(string file, string key, object? v) =>
        v as string ?? throw new ConfigException($"{file}: {key} must be a string, not {Describe(v)}");

    private static string NonEmpty(string file, string key, string v) =>
        v.Length > 0 ? v : throw new ConfigException($"{file}: {key} must not be empty");

    private static long Int(string file, string key, object? v) =>
        v is long l ? l : throw new ConfigException($"{file}: {key} must be an integer, not {Describe(v)}");

    private static TomlTable Table(string file, string key, object? v) =>
        v as TomlTable ?? throw new ConfigException($"{file}: {key} must be a table ([{key}])");

    private static TimeSpan Frame(string file, string key, object? v)
    {
        TimeSpan t;
        if (v is long ms) t = TimeSpan.FromMilliseconds(ms);
        else if (v is string s && Durations.TryParse(s, out t)) { }
        else throw new ConfigException($"{file}: {key} must be a duration such as \"100ms\" or \"1s\", not {Describe(v)}");
        return Durations.CheckFrame(t, $"{file}: {key}");
    }

    private static long Size(string file, string key, object? v)
    {
        if (v is long n && n >= 0) return n;
        if (v is string s && Durations.TryParseSize(s, out var b)) return b;
        throw new ConfigException($"{file}: {key} must be a size such as \"256MiB\" or a number of bytes, not {Describe(v)}");
    }

    private static string Describe(object? v) => v switch
    {
        null => "nothing",
        string s => $"\"{s}\"",
        TomlTable => "a table",
        TomlArray => "an array",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "?",
    };
}

/// <summary>Source-generated TOML metadata for the untyped model: no reflection under Native AOT.</summary>
[Tomlyn.Serialization.TomlSerializable(typeof(TomlTable))]
internal sealed partial class ConfigTomlContext : Tomlyn.Serialization.TomlSerializerContext;

/// <summary>"100ms", "1.5s", "2m" and sizes "256MiB", "1G", "4096".</summary>
internal static class Durations
{
    public static bool TryParse(string s, out TimeSpan t)
    {
        t = default;
        s = s.Trim();
        (string unit, double scale)[] units = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (unit, scale) in units)
        {
            if (!s.EndsWith(unit, StringComparison.Ordinal)) continue;
            if (!double.TryParse(s[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || x < 0 || double.IsInfinity(x)) return false;
            t = TimeSpan.FromTicks((long)Math.Round(x * scale * TimeSpan.TicksPerSecond));
            return true;
        }
        return false;
    }

    /// <summary>A frame must be long enough to coalesce and short enough to be a useful resolution.</summary>
    public static TimeSpan CheckFrame(TimeSpan t, string what)
    {
        if (t < TimeSpan.FromMilliseconds(10) || t > TimeSpan.FromSeconds(60))
            throw new ConfigException($"{what}: the frame must be between 10ms and 60s, not {t.TotalMilliseconds}ms");
        return t;
    }

    public static bool TryParseSize(string s, out long bytes)
    {
        bytes = 0;
        s = s.Trim();
        (string unit, long scale)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30), ("B", 1), ("", 1)];
        foreach (var (unit, scale) in units)
        {
            if (!s.EndsWith(unit, StringComparison.Ordinal)) continue;
            if (!long.TryParse(s[..^unit.Length].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return false;
            bytes = checked(n * scale);
            return true;
        }
        return false;
    }
}
