using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli;

public static class SnapshotVerb
{
    /// <summary>Checked on the raw bytes of the argument (the directory's own name may not be UTF-8).</summary>
    private static unsafe bool IsDirectory(string dir)
    {
        var z = Store.Native.Libc.CString(RawPath.EncodeArg(dir));
        int fd;
        fixed (byte* p = z) fd = Store.Native.Libc.openat(Store.Native.Libc.AT_FDCWD, p, Store.Native.Libc.O_RDONLY | Store.Native.Libc.O_DIRECTORY | Store.Native.Libc.O_CLOEXEC, 0);
        if (fd < 0) return false;
        Store.Native.Libc.close(fd);
        return true;
    }

    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var dir = a.Positionals[0];
        var name = a.Value("recording") ?? throw new UsageException("snapshot needs --recording NAME");
        if (name.Length == 0 || name.Contains('/')) throw new UsageException("a recording name must be non-empty and contain no '/'");
        if (!IsDirectory(dir)) throw new NotFoundException($"{dir}: no such directory");
        var merged = a.Value("merged");
        if (merged != null && !IsDirectory(merged)) throw new NotFoundException($"{merged}: no such directory");
        var atText = a.Value("at");
        long now = Moments.Now();
        // Validate the time before touching the store.
        if (atText != null) TimeArgs.Parse(atText, now, now, "--at");

        using var store = RecordingStore.Open(ctx.StoreDir);
        var rec = store.FindByName(name);
        long at;
        if (rec == null)
        {
            long start = now;
            if (atText != null && atText is not ("start" or "end") && !Moments.TryParseOffset(atText, out _)) start = TimeArgs.Parse(atText, now, now, "--at");
            at = atText == null ? start : TimeArgs.Parse(atText, start, start, "--at");
            rec = store.CreateRecording(new RecordingInfo
            {
                Name = name, Start = start, Host = Environment.MachineName, Kernel = Environment.OSVersion.VersionString,
            });
        }
        else
        {
            at = atText == null ? now : TimeArgs.Parse(atText, rec.Start, rec.End, "--at");
            if (at < rec.Start) rec.Start = at;
        }

        var progress = ctx.Progress;
        var summary = new Ingester(store) { MergedRoot = merged }.IngestTree(rec, dir, at,
            s => progress.Report(() => $"snapshot: {s.Files} entries, {Human.Bytes(Interlocked.Read(ref s.BytesRead))} read"));
        progress.Done();
        if (a.Json)
        {
            ctx.Out.Json(w =>
            {
                w.WriteString("recording", rec.IdText);
                w.Time("at", at);
                w.WriteNumber("files", summary.Files);
                w.WriteNumber("changed", summary.Changed);
                w.WriteNumber("bytes_read", summary.BytesRead);
                w.WriteNumber("bytes_stored", summary.BytesStored);
            });
        }
        else
        {
            ctx.Out.Line($"recording {rec.IdText} ({name}) at {Moments.Format(at)}: {summary.Files} entries scanned, " +
                         $"{summary.Changed} changed, {Human.Bytes(summary.BytesRead)} read, {Human.Bytes(summary.BytesStored)} stored" +
                         (summary.Gaps > 0 ? $", {summary.Gaps} gaps (see timeline)" : ""));
        }
        return 0;
    }
}
