using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

public static class TimelineVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        // --from/--to filter the rows; a range reaching past the recording is simply clipped.
        long from = a.Value("from") is { } f ? TimeArgs.Parse(f, rec.Start, rec.End, "--from") : long.MinValue;
        long to = a.Value("to") is { } t ? TimeArgs.Parse(t, rec.Start, rec.End, "--to") : long.MaxValue;
        if (from > to) throw new UsageException("--from is after --to");
        var glob = a.Value("path") is { } g ? new PathGlob(g) : null;
        foreach (var row in TimelineQuery.Rows(src.Store, rec.Id, from, to, glob))
        {
            var v = row.Version;
            var e = row.Event;
            string? detail = e?.Detail;
            if (e != null && e.ToPath.Length > 0) detail = (detail == null ? "" : detail + " ") + "-> " + Human.Path(e.ToPath);
            if (v != null && v.HardLinkTo.Length > 0) detail = "hard link to " + Human.Path(v.HardLinkTo);
            if (v != null && v.Type == EntryType.Symlink) detail = "-> " + RawPath.Escape(v.SymlinkTarget);
            if (a.Json)
            {
                ctx.Out.Json(w =>
                {
                    w.Time("time", row.Time);
                    w.WriteString("offset", Moments.FormatOffset(row.Time - rec.Start));
                    w.WriteString("kind", row.Kind);
                    w.PathFields("path", row.Path);
                    w.StringOrNull("type", v?.Type.Name());
                    if (v != null && v.Type == EntryType.File) w.WriteNumber("size", v.Size); else w.WriteNull("size");
                    if (e?.Pid is int pid) w.WriteNumber("pid", pid); else w.WriteNull("pid");
                    w.StringOrNull("comm", e?.Comm);
                    w.StringOrNull("detail", detail);
                });
                continue;
            }
            var sb = new System.Text.StringBuilder();
            sb.Append($"+{Moments.FormatOffset(row.Time - rec.Start),-12} {row.Kind,-12}");
            if (row.Path.Length > 0 || v != null) sb.Append(' ').Append(Human.Path(row.Path));
            if (v != null && !v.IsDeleted)
            {
                sb.Append("  ").Append(v.Type.Name());
                if (v.Type == EntryType.File) sb.Append(' ').Append(v.Size).Append(" bytes");
            }
            if (e?.Pid is int p) sb.Append($"  pid {p}");
            if (e?.Comm != null) sb.Append($" ({e.Comm})");
            if (detail != null) sb.Append("  ").Append(detail.Replace("\n", "\\n"));
            ctx.Out.Line(sb.ToString());
        }
        return 0;
    }
}
