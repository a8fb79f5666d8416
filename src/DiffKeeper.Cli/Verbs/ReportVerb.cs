using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Cli.Report;
using DiffKeeper.Store;

namespace DiffKeeper.Cli;

public static class ReportVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var file = a.Value("output") ?? throw new UsageException("report needs -o FILE.html");
        var opts = Options(a);
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var summary = WriteFile(src.Store, src.Recording, opts, file);
        if (a.Json)
            ctx.Out.Json(w => Summary(w, src.Recording.IdText, file, summary));
        else
            ctx.Out.Line($"wrote {file} ({Human.Bytes(summary.Bytes)}): {summary.Paths} paths, {summary.Versions} versions, {summary.Events} events, " +
                         $"{summary.Moments} moments" + (summary.OmittedVersions > 0 ? $"; content of {summary.OmittedVersions} left out ({Human.Bytes(summary.OmittedBytes)}, see the page)" : ""));
        return 0;
    }

    public static ReportOptions Options(ParsedArgs a)
    {
        var opts = new ReportOptions();
        if (a.Value("max-file-bytes") is { } f) opts.MaxFileBytes = GcVerb.ParseSize(f);
        if (a.Value("max-total-bytes") is { } t) opts.MaxTotalBytes = GcVerb.ParseSize(t);
        return opts;
    }

    /// <summary>Written beside the target and renamed, so a reader never sees half a report.</summary>
    public static ReportSummary WriteFile(RecordingStore store, Store.Model.RecordingInfo rec, ReportOptions opts, string file)
    {
        var full = Path.GetFullPath(file);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new NotFoundException($"cannot write {file}: no directory {dir}");
        var tmp = full + ".tmp-" + Environment.ProcessId;
        try
        {
            ReportSummary s;
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                s = ReportBuilder.Write(store, rec, opts, fs);
            File.Move(tmp, full, overwrite: true);
            return s;
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }

    public static void Summary(System.Text.Json.Utf8JsonWriter w, string rec, string file, ReportSummary s)
    {
        w.WriteString("recording", rec);
        w.WriteString("file", file);
        w.WriteNumber("bytes", s.Bytes);
        w.WriteNumber("paths", s.Paths);
        w.WriteNumber("versions", s.Versions);
        w.WriteNumber("events", s.Events);
        w.WriteNumber("moments", s.Moments);
        w.WriteNumber("omitted_versions", s.OmittedVersions);
        w.WriteNumber("omitted_bytes", s.OmittedBytes);
    }
}
