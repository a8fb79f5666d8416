using System.Text;

namespace DiffKeeper.Cli.Arguments;

/// <summary>`diffkeeper --help`, `diffkeeper VERB --help` and `diffkeeper help [VERB]`, generated from the verb table.</summary>
public static class HelpText
{
    public const string Tagline = "a flight recorder for containers: see any file as it was at any moment";

    /// <summary>Exit codes every verb uses (also in the man page and docs/cli.md).</summary>
    public static readonly (int Code, string Short, string Meaning)[] ExitCodes =
    [
        (0, "ok", "success"),
        (1, "error", "an error not listed below (I/O, permission, containerd, a failed setup; doctor: the node is not ready)"),
        (2, "usage", "usage: unknown command or option, missing or bad argument"),
        (3, "not found", "not found: no such recording, path, moment, image or blob"),
        (4, "corrupt data", "corrupt data: a damaged store, packed file or image, or unsafe names refused"),
        (5, "store locked", "the store is locked by another process"),
    ];

    private static string ExitCodeLine => "exit codes: " + string.Join(", ", ExitCodes.Select(e => $"{e.Code} {e.Short}"));

    public const string RecHelp = "REC: a recording id, a container id (its latest recording), a name given at snapshot, or a packed file.";
    public const string TimeHelp = "T:   an offset from the start (0s, 1.5s, 250ms, 2m3s, 1h), an RFC 3339 time, start, or end.";

    public static string General(IEnumerable<VerbSpec> verbs)
    {
        var sb = new StringBuilder();
        sb.AppendLine("diffkeeper — " + Tagline + ".");
        sb.AppendLine();
        sb.AppendLine("usage: diffkeeper [global options] COMMAND [args]");
        sb.AppendLine();
        sb.AppendLine("commands:");
        foreach (var v in verbs.Where(v => !v.Hidden)) sb.AppendLine($"  {v.Name,-10} {FirstSentence(v.Summary)}");
        sb.AppendLine();
        AppendOptions(sb, "global options", ArgParser.Global);
        sb.AppendLine();
        sb.AppendLine(RecHelp);
        sb.AppendLine(TimeHelp);
        sb.AppendLine(ExitCodeLine + ".");
        sb.Append("run 'diffkeeper help COMMAND' (or 'diffkeeper COMMAND --help') for a command's options and examples.");
        return sb.ToString();
    }

    public static string Verb(VerbSpec v)
    {
        var sb = new StringBuilder();
        sb.AppendLine("usage: " + v.Usage);
        sb.AppendLine();
        sb.AppendLine(v.Summary);
        sb.AppendLine();
        if (v.Options.Length > 0) { AppendOptions(sb, "options", v.Options); sb.AppendLine(); }
        AppendOptions(sb, "global options", ArgParser.Global);
        sb.AppendLine();
        var args = v.Arguments;
        if (args.Contains("REC")) sb.AppendLine(RecHelp);
        if (args.Any(a => a.StartsWith('T')) || v.Options.Any(o => o.ValueName is "T" or "T1" or "T2")) sb.AppendLine(TimeHelp);
        if (args.Contains("REC") || args.Any(a => a.StartsWith('T')) || v.Options.Any(o => o.ValueName is "T" or "T1" or "T2")) sb.AppendLine();
        sb.AppendLine("examples:");
        foreach (var e in v.Examples) sb.AppendLine("  " + e);
        sb.AppendLine();
        sb.Append(ExitCodeLine + " (see diffkeeper help and docs/cli.md).");
        return sb.ToString();
    }

    /// <summary>"-o, --out DIR|FILE.tar" as help and the man page show it.</summary>
    public static string Signature(OptionSpec o) =>
        (o.Short != null ? $"-{o.Short}, " : "") + "--" + o.Name + (o.TakesValue ? " " + (o.ValueName ?? "VALUE") : "");

    private static void AppendOptions(StringBuilder sb, string title, OptionSpec[] options)
    {
        sb.AppendLine(title + ":");
        foreach (var o in options)
        {
            var name = (o.Short != null ? "" : "    ") + Signature(o);
            // A long signature gets its own line, so the help column stays aligned.
            if (name.Length > 28) sb.AppendLine("  " + name).AppendLine($"  {"",-28} {o.Help}");
            else sb.AppendLine($"  {name,-28} {o.Help}");
        }
    }

    public static string FirstSentence(string s)
    {
        int i = s.IndexOf(". ", StringComparison.Ordinal);
        return (i < 0 ? s : s[..(i + 1)]).TrimEnd('.');
    }
}
