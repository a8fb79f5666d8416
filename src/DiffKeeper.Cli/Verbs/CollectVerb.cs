using System.Text;
using System.Text.Json;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Cli.Report;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Pack;

namespace DiffKeeper.Cli;

/// <summary>
/// `diffkeeper collect`: the CI hand-off. A directory a CI system uploads as one artifact: per recording the packed
/// file (usable as REC anywhere) and its report, plus index.html (links, no script) and index.json.
/// </summary>
public static class CollectVerb
{
    private sealed record Entry(RecordingInfo Rec, long Versions, string Pack, long PackBytes, string Report, ReportSummary Summary);

    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var outDir = a.Value("output") ?? throw new UsageException("collect needs -o DIR");
        var opts = ReportVerb.Options(a);
        long? since = a.Value("since") is { } s ? ParseSince(s) : null;
        bool failedOnly = a.Flags.Contains("failed");
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new UsageException($"collect: {outDir} is not empty");
        if (File.Exists(outDir)) throw new UsageException($"collect: {outDir} is a file");

        var entries = new List<Entry>();
        int skipped = 0;
        Directory.CreateDirectory(outDir);
        if (RecordingStore.Exists(ctx.StoreDir))
        {
            using var store = RecordingStore.Open(ctx.StoreDir, readOnly: true);
            var progress = ctx.Progress;
            foreach (var rec in store.ListRecordings())
            {
                // "Failed" = an exit was recorded and it was not 0; a recording without an exit (still running, or a
                // snapshot) is not known to have failed.
                if ((failedOnly && !(rec.ExitStatus is int st && st != 0)) || (since is long sn && rec.Start < sn)) { skipped++; continue; }
                var pack = rec.IdText + ".dkpack";
                var report = rec.IdText + ".html";
                long packBytes = PackWriter.Write(store, rec, Path.Combine(outDir, pack),
                    p => progress.Report(() => $"collect {rec.IdText}: {p.Chunks}/{p.TotalChunks} chunks"));
                progress.Done();
                var summary = ReportVerb.WriteFile(store, rec, opts, Path.Combine(outDir, report));
                var e = new Entry(rec, store.CountVersions(rec.Id), pack, packBytes, report, summary);
                entries.Add(e);
                if (a.Json)
                    ctx.Out.Json(w => { WriteEntry(w, e); });
                else
                    ctx.Out.Line($"{rec.IdText}  {rec.Name ?? rec.ContainerId ?? "-"}  exit {rec.ExitStatus?.ToString() ?? "-"}  {pack} ({Human.Bytes(packBytes)})  {report} ({Human.Bytes(summary.Bytes)})");
            }
        }
        WriteIndexJson(Path.Combine(outDir, "index.json"), entries, failedOnly, since);
        WriteIndexHtml(Path.Combine(outDir, "index.html"), entries, failedOnly, since);
        if (a.Json)
            ctx.Out.Json(w =>
            {
                w.WriteString("out", outDir);
                w.WriteNumber("recordings", entries.Count);
                w.WriteNumber("skipped", skipped);
                w.WriteString("index", Path.Combine(outDir, "index.html"));
            });
        else
            ctx.Out.Line($"collected {entries.Count} recording{(entries.Count == 1 ? "" : "s")} into {outDir} ({skipped} skipped by --failed/--since); open {Path.Combine(outDir, "index.html")}");
        return 0;
    }

    /// <summary>--since: an RFC 3339 time, or a duration back from now ("2h": recordings of the last two hours).</summary>
    public static long ParseSince(string s)
    {
        if (Moments.TryParseRfc3339(s, out var abs)) return abs;
        if (Moments.TryParseOffset(s, out var ago)) return Moments.Now() - ago;
        throw new UsageException($"bad time for --since: '{s}' (an RFC 3339 time, or a duration back from now like 2h, 30m)");
    }

    private static void WriteEntry(Utf8JsonWriter w, Entry e)
    {
        LsVerb.Fields(w, e.Rec, e.Versions);
        w.WriteString("pack", e.Pack);
        w.WriteNumber("pack_bytes", e.PackBytes);
        w.WriteString("report", e.Report);
        w.WriteNumber("report_bytes", e.Summary.Bytes);
    }

    private static void WriteIndexJson(string file, List<Entry> entries, bool failedOnly, long? since)
    {
        using var fs = File.Create(file);
        using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("generated", Moments.Format(Moments.Now()));
        w.WriteString("host", Environment.MachineName);
        w.WriteBoolean("failed_only", failedOnly);
        w.Time("since", since);
        w.WriteStartArray("recordings");
        foreach (var e in entries) { w.WriteStartObject(); WriteEntry(w, e); w.WriteEndObject(); }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteIndexHtml(string file, List<Entry> entries, bool failedOnly, long? since)
    {
        static string E(string? s) => ReportBuilder.HtmlText(s ?? "—");
        var sb = new StringBuilder();
        sb.Append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
          .Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n")
          .Append("<title>DiffKeeper recordings — ").Append(E(Environment.MachineName)).Append("</title>\n<style>\n")
          .Append("body{font:13px/1.45 system-ui,'DejaVu Sans',sans-serif;margin:0;background:#f6f7f9;color:#1d2330}")
          .Append("header{background:#1d2330;color:#e8ebf2;padding:14px 20px}h1{margin:0;font-size:18px}")
          .Append("table{border-collapse:collapse;margin:16px;background:#fff;border:1px solid #dde1e8}")
          .Append("th,td{padding:5px 10px;border-bottom:1px solid #eef0f4;text-align:left;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px}")
          .Append("th{color:#6b7385}.bad{color:#b3261e;font-weight:700}.ok{color:#1c7a35}a{color:#2f6fde}p{margin:12px 16px;color:#6b7385}\n")
          .Append("</style></head><body>\n<header><h1>DiffKeeper recordings on ").Append(E(Environment.MachineName)).Append("</h1></header>\n")
          .Append("<p>").Append(entries.Count).Append(" recording").Append(entries.Count == 1 ? "" : "s")
          .Append(failedOnly ? ", failed only" : "").Append(since is long sn ? ", started since " + Moments.Format(sn) : "")
          .Append(". Each report is one self-contained page; each .dkpack file works as REC for the diffkeeper CLI (e.g. <code>diffkeeper timeline ID.dkpack</code>).</p>\n");
        sb.Append("<table><thead><tr><th>recording</th><th>name / container</th><th>image</th><th>start</th><th>end</th><th>exit</th><th>versions</th><th>report</th><th>packed</th></tr></thead><tbody>\n");
        foreach (var e in entries)
        {
            var r = e.Rec;
            var exit = r.ExitStatus is int st ? $"<td class=\"{(st == 0 ? "ok" : "bad")}\">{st}</td>" : "<td>—</td>";
            sb.Append("<tr><td>").Append(r.IdText).Append("</td><td>").Append(E(r.Name ?? r.ContainerId)).Append("</td><td>").Append(E(r.Image))
              .Append("</td><td>").Append(Moments.Format(r.Start)).Append("</td><td>").Append(Moments.Format(r.End)).Append("</td>").Append(exit)
              .Append("<td>").Append(e.Versions).Append("</td><td><a href=\"").Append(E(e.Report)).Append("\">report</a> (").Append(E(Human.Bytes(e.Summary.Bytes)))
              .Append(")</td><td><a href=\"").Append(E(e.Pack)).Append("\">").Append(E(e.Pack)).Append("</a> (").Append(E(Human.Bytes(e.PackBytes))).Append(")</td></tr>\n");
        }
        if (entries.Count == 0) sb.Append("<tr><td colspan=\"9\">no recordings matched</td></tr>\n");
        sb.Append("</tbody></table>\n</body></html>\n");
        File.WriteAllText(file, sb.ToString(), new UTF8Encoding(false));
    }
}
