using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

public static class DiffVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        string? t1 = a.Value("from"), t2 = a.Value("to");
        var pos = a.Positionals;
        if (pos.Count == 3) { t1 ??= pos[1]; t2 ??= pos[2]; }
        else if (pos.Count == 2) { if (t1 == null) t1 = pos[1]; else t2 ??= pos[1]; }
        if (t1 == null || t2 == null || pos.Count > 3) throw new UsageException("usage: diffkeeper diff REC T1 T2 (or --from T1 --to T2)");
        using var src = RecordingSource.Open(ctx, pos[0]);
        var rec = src.Recording;
        long from = TimeArgs.Moment(t1, rec, "T1"), to = TimeArgs.Moment(t2, rec, "T2");
        foreach (var row in DiffQuery.Between(src.Store, rec.Id, from, to))
        {
            if (a.Json)
            {
                ctx.Out.Json(w =>
                {
                    w.WriteString("change", row.Change.ToString().ToLowerInvariant());
                    w.PathFields("path", row.Path);
                    w.PathFields("from_path", row.FromPath);
                });
                continue;
            }
            ctx.Out.Line(row.Change switch
            {
                ChangeKind.Added => "A " + Human.Path(row.Path),
                ChangeKind.Modified => "M " + Human.Path(row.Path),
                ChangeKind.Deleted => "D " + Human.Path(row.Path),
                ChangeKind.Renamed => "R " + Human.Path(row.FromPath!) + " -> " + Human.Path(row.Path),
                _ => "T " + Human.Path(row.Path),
            });
        }
        return 0;
    }
}
