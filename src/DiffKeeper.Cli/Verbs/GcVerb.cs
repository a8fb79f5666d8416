using System.Globalization;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Maintenance;

namespace DiffKeeper.Cli;

public static class GcVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var policy = new RetentionPolicy { KeepFailedOnly = a.Has("keep-failed-only"), DryRun = a.Has("dry-run") };
        if (a.Value("keep-last") is { } kl)
        {
            if (!int.TryParse(kl, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) throw new UsageException($"bad --keep-last '{kl}': need a number >= 0");
            policy.KeepLast = n;
        }
        if (a.Value("max-bytes") is { } mb) policy.MaxBytes = ParseSize(mb);
        if (!RecordingStore.Exists(ctx.StoreDir)) throw new NotFoundException($"no store at {ctx.StoreDir}");
        using var store = RecordingStore.Open(ctx.StoreDir, forGc: true);
        var result = GarbageCollector.Run(store, policy);
        string verb = policy.DryRun ? "would drop" : "dropped";
        foreach (var r in result.Dropped)
        {
            if (a.Json)
                ctx.Out.Json(w => { w.WriteString(policy.DryRun ? "would_drop" : "dropped", r.IdText); w.StringOrNull("name", r.Name ?? r.ContainerId); w.WriteNumber("bytes", r.StoredBytes); });
            else
                ctx.Out.Line($"{verb} recording {r.IdText} ({r.Name ?? r.ContainerId ?? "-"}, exit {r.ExitStatus?.ToString() ?? "-"})");
        }
        if (a.Json)
            ctx.Out.Json(w =>
            {
                w.WriteBoolean("dry_run", policy.DryRun);
                w.WriteNumber("recordings_dropped", result.Dropped.Count);
                w.WriteNumber("chunks_removed", result.ChunksRemoved);
                w.WriteNumber("bytes_freed", result.BytesFreed);
            });
        else
            ctx.Out.Line($"{(policy.DryRun ? "would remove" : "removed")} {result.ChunksRemoved} chunks ({Human.Bytes(result.BytesFreed)} freed), {result.ChunksKept} chunks kept");
        return 0;
    }

    public static long ParseSize(string s)
    {
        var t = s.Trim().ToUpperInvariant().Replace("IB", "").TrimEnd('B');
        long mult = 1;
        if (t.Length > 0 && "KMGT".Contains(t[^1]))
        {
            mult = t[^1] switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1L << 40 };
            t = t[..^1];
        }
        if (!decimal.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) || v < 0)
            throw new UsageException($"bad size '{s}' (e.g. 500M, 10G, 1048576)");
        return (long)(v * mult);
    }
}
