using DiffKeeper.Cli.Arguments;
using DiffKeeper.Store;

namespace DiffKeeper.Cli;

/// <summary>The verbs about the CLI itself: help, completion, man, and the hidden helper the completions call.</summary>
public static class MetaVerbs
{
    public static int Help(ParsedArgs a, CliContext ctx)
    {
        if (a.Positionals.Count == 0) { ctx.Out.Line(HelpText.General(Verbs.All.Values)); return 0; }
        var name = a.Positionals[0];
        if (!Verbs.All.TryGetValue(name, out var verb) || verb.Hidden)
            throw new UsageException($"help: unknown command '{name}'{Suggest.DidYouMean(name, Verbs.All.Values.Where(v => !v.Hidden).Select(v => v.Name))} (see diffkeeper --help)");
        ctx.Out.Line(HelpText.Verb(verb));
        return 0;
    }

    public static int Completion(ParsedArgs a, CliContext ctx)
    {
        ctx.Out.Raw(System.Text.Encoding.UTF8.GetBytes(Completions.Script(a.Positionals[0], Verbs.All.Values)));
        return 0;
    }

    public static int Man(ParsedArgs a, CliContext ctx)
    {
        var dir = a.Value("out") ?? throw new UsageException("man needs --out DIR (see diffkeeper man --help)");
        Directory.CreateDirectory(dir);
        // A reproducible build sets SOURCE_DATE_EPOCH: the page's date is then the source's, not today's.
        var when = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH") is { } e && long.TryParse(e, out var secs)
            ? DateTimeOffset.FromUnixTimeSeconds(secs) : DateTimeOffset.UtcNow;
        foreach (var page in ManPage.All(Verbs.All.Values, Verbs.Version.Split(' ')[^1], when.ToString("yyyy-MM-dd")))
        {
            var path = Path.Combine(dir, page.FileName);
            File.WriteAllText(path, page.Text);
            if (!a.Quiet && !a.Json) ctx.Out.Line(path);
        }
        return 0;
    }

    /// <summary>
    /// `__complete recordings`: ids, names and container ids, one per line, for the shells. Never fails loudly: a
    /// missing, locked or damaged store prints nothing and exits 0 (a &lt;TAB&gt; must not print errors).
    /// `__complete spec`: the verb table as JSON lines (what the tests check help, completions and man against).
    /// </summary>
    public static int Complete(ParsedArgs a, CliContext ctx)
    {
        switch (a.Positionals[0])
        {
            case "recordings":
                try
                {
                    if (!RecordingStore.Exists(ctx.StoreDir)) return 0;
                    using var store = RecordingStore.Open(ctx.StoreDir, readOnly: true);
                    var words = new SortedSet<string>(StringComparer.Ordinal);
                    foreach (var r in store.ListRecordings())
                    {
                        words.Add(r.IdText);
                        if (r.Name is { Length: > 0 } n) words.Add(n);
                        if (r.ContainerId is { Length: > 0 } c) words.Add(c);
                    }
                    foreach (var w in words.Where(w => !w.Any(char.IsWhiteSpace))) ctx.Out.Line(w);
                }
                catch (Exception) { /* completing is best effort */ }
                return 0;
            case "spec":
                foreach (var v in Verbs.All.Values.Where(v => !v.Hidden))
                    ctx.Out.Json(w =>
                    {
                        w.WriteString("verb", v.Name);
                        w.WriteString("usage", v.Usage);
                        w.WriteStartArray("arguments");
                        for (int i = 0; i < v.Arguments.Count; i++)
                        {
                            w.WriteStartObject();
                            w.WriteString("name", v.Arguments[i]);
                            w.WriteString("completion", v.ArgumentKind(i).ToString().ToLowerInvariant());
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                        w.WriteStartArray("options");
                        foreach (var o in v.Options.Select(o => (o, g: false)).Concat(ArgParser.Global.Select(o => (o, g: true))))
                        {
                            w.WriteStartObject();
                            w.WriteString("name", o.o.Name);
                            if (o.o.Short != null) w.WriteString("short", o.o.Short); else w.WriteNull("short");
                            w.WriteBoolean("takes_value", o.o.TakesValue);
                            w.WriteBoolean("global", o.g);
                            w.WriteString("completion", o.o.Completion.ToString().ToLowerInvariant());
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                        w.WriteNumber("examples", v.Examples.Length);
                    });
                return 0;
            default:
                throw new UsageException($"__complete: unknown kind '{a.Positionals[0]}' (recordings or spec)");
        }
    }
}
