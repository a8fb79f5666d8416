using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Export;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

public static class ExportVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        if (a.Value("oci") is not null || a.Value("oci-layout") is not null) return OciExportVerb.Run(a, ctx);
        var outPath = a.Value("out") ?? throw new UsageException("export needs --out DIR|FILE.tar (or --oci FILE.tar, --oci-layout DIR)");
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        long at = a.Value("at") is { } t ? TimeArgs.Moment(t, rec, "--at") : rec.End;
        var state = StateQuery.At(src.Store, rec.Id, at, withChunks: true);
        var progress = ctx.Progress;
        ExportSummary summary;
        if (outPath.EndsWith(".tar", StringComparison.Ordinal))
        {
            var tmp = outPath + ".partial";
            var dir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
            if (!Directory.Exists(dir)) throw new NotFoundException($"cannot write {outPath}: no directory {dir}");
            try
            {
                using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                    summary = new TarExporter(src.Store, fs, progress).Export(state);
                File.Move(tmp, outPath, overwrite: true);
            }
            finally { if (File.Exists(tmp)) File.Delete(tmp); }
        }
        else
        {
            using var exporter = new DirectoryExporter(src.Store, outPath, progress);
            summary = exporter.Export(state);
        }
        foreach (var w in summary.Warnings) Console.Error.WriteLine("diffkeeper: warning: " + w);
        if (a.Json)
            ctx.Out.Json(w =>
            {
                w.WriteString("recording", rec.IdText);
                w.Time("at", at);
                w.WriteString("out", outPath);
                w.WriteNumber("entries", summary.Entries);
                w.WriteNumber("bytes", summary.Bytes);
                w.WriteNumber("warnings", summary.Warnings.Count);
                w.WriteNumber("unsafe_skipped", summary.Unsafe.Count);
            });
        else
            ctx.Out.Line($"exported {summary.Entries} entries ({Human.Bytes(summary.Bytes)}) at {Moments.Format(at)} to {outPath}");
        // The rest was exported; entries whose names would escape the target are invalid data.
        summary.ThrowIfUnsafe();
        return 0;
    }
}
