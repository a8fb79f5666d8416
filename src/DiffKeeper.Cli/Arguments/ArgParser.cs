using DiffKeeper.Store;

namespace DiffKeeper.Cli.Arguments;

/// <summary>One option a verb (or every verb) accepts.</summary>
public sealed record OptionSpec(string Name, string? Short, bool TakesValue, string Help, string? ValueName = null);

/// <summary>What the command line said: the verb, its positional arguments and its options.</summary>
public sealed class ParsedArgs
{
    public string? Verb;
    public List<string> Positionals = [];
    public Dictionary<string, string> Values = new();
    /// <summary>Every value of a repeatable option, in order (<see cref="Values"/> holds the last one).</summary>
    public Dictionary<string, List<string>> AllValues = new();
    public HashSet<string> Flags = [];

    public bool Has(string name) => Flags.Contains(name) || Values.ContainsKey(name);
    public string? Value(string name) => Values.GetValueOrDefault(name);
    public IReadOnlyList<string> ValuesOf(string name) => AllValues.TryGetValue(name, out var l) ? l : [];
    public bool Json => Flags.Contains("json");
    public bool Quiet => Flags.Contains("quiet");
}

/// <summary>
/// Table-driven parsing: global options may appear before or after the verb; "--name value", "--name=value",
/// "-x value"; "--" ends options. Anything unknown is a usage error (exit 2).
/// </summary>
public static class ArgParser
{
    public static readonly OptionSpec[] Global =
    [
        new("store", null, true, "store directory (default: $DIFFKEEPER_STORE or /var/lib/diffkeeper)", "DIR"),
        new("json", null, false, "machine output: one JSON object per line"),
        new("quiet", "q", false, "no progress output"),
        new("help", "h", false, "show help"),
        new("version", null, false, "print the version"),
    ];

    public static ParsedArgs Parse(string[] args, IReadOnlyDictionary<string, VerbSpec> verbs)
    {
        var p = new ParsedArgs();
        bool endOfOptions = false;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (endOfOptions || a == "-" || !a.StartsWith('-'))
            {
                if (p.Verb == null && !endOfOptions)
                {
                    if (!verbs.ContainsKey(a)) throw new UsageException($"unknown command '{a}' (try --help)");
                    p.Verb = a;
                }
                else p.Positionals.Add(a);
                continue;
            }
            if (a == "--") { endOfOptions = true; if (p.Verb == null) throw new UsageException("a command is needed before --"); continue; }
            string name;
            string? inline = null;
            OptionSpec? spec;
            var verbOptions = p.Verb != null ? verbs[p.Verb].Options : [];
            if (a.StartsWith("--"))
            {
                name = a[2..];
                int eq = name.IndexOf('=');
                if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
                spec = Array.Find(verbOptions, o => o.Name == name) ?? Array.Find(Global, o => o.Name == name);
            }
            else
            {
                name = a[1..];
                spec = Array.Find(verbOptions, o => o.Short == name) ?? Array.Find(Global, o => o.Short == name);
            }
            if (spec == null)
                throw new UsageException(p.Verb == null ? $"unknown option '{a}'" : $"unknown option '{a}' for '{p.Verb}' (try diffkeeper {p.Verb} --help)");
            if (!spec.TakesValue)
            {
                if (inline != null) throw new UsageException($"option --{spec.Name} takes no value");
                p.Flags.Add(spec.Name);
                continue;
            }
            var value = inline ?? (i + 1 < args.Length ? args[++i] : throw new UsageException($"option --{spec.Name} needs a value"));
            p.Values[spec.Name] = value;
            if (!p.AllValues.TryGetValue(spec.Name, out var all)) p.AllValues[spec.Name] = all = [];
            all.Add(value);
        }
        return p;
    }
}
