using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Cli.Setup;
using DiffKeeper.Store;
using DiffKeeper.Store.Maintenance;

namespace DiffKeeper.Cli;

public static class DoctorVerb
{
    /// <summary>
    /// Without --store (or DIFFKEEPER_STORE): the node check, then the default store's check. With one, or with
    /// --store-only: that store only (what scripts checking a copied store or a CI artifact want).
    /// </summary>
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        bool storeOnly = a.Flags.Contains("store-only") || a.Value("store") != null ||
                         Environment.GetEnvironmentVariable("DIFFKEEPER_STORE") is { Length: > 0 };
        if (storeOnly) return CheckStore(a, ctx);

        var socket = a.Value("socket") ?? (Environment.GetEnvironmentVariable("DIFFKEEPER_SOCKET") is { Length: > 0 } s ? s : "/run/diffkeeper/diffkeeperd.sock");
        var findings = NodeCheck.Run(a.Value("containerd-config") ?? ContainerdSetup.DefaultConfig, socket, ctx.StoreDir);
        if (a.Json)
        {
            foreach (var f in findings)
                ctx.Out.Json(w =>
                {
                    w.WriteString("check", f.Check);
                    w.WriteBoolean("ok", f.Ok);
                    w.WriteBoolean("warning", f.Warning);
                    w.WriteString("detail", f.Detail);
                    if (f.Fix != null) w.WriteString("fix", f.Fix); else w.WriteNull("fix");
                });
        }
        else ctx.Out.Line(NodeCheck.Format(findings).TrimEnd('\n'));
        int code = findings.Any(f => !f.Ok && !f.Warning) ? 1 : 0;
        if (RecordingStore.Exists(ctx.StoreDir))
        {
            int storeCode = CheckStore(a, ctx);
            if (storeCode != 0) code = storeCode;
        }
        if (!a.Json) ctx.Out.Line(code == 0 ? "node is ready to record" : "node is not ready: run the fix lines above");
        return code;
    }

    private static int CheckStore(ParsedArgs a, CliContext ctx)
    {
        if (!RecordingStore.Exists(ctx.StoreDir)) throw new NotFoundException($"no store at {ctx.StoreDir}");
        // Strict: any damage in the write-ahead log is a finding (normal readers recover up to it).
        using var store = RecordingStore.Open(ctx.StoreDir, readOnly: true, strict: true);
        var progress = ctx.Progress;
        var r = Doctor.Check(store, (done, total) => progress.Report(() => $"doctor: {done}/{total} chunks verified"));
        progress.Done();
        if (a.Json)
        {
            ctx.Out.Json(w =>
            {
                w.WriteBoolean("healthy", r.Healthy);
                w.WriteStartArray("problems");
                foreach (var p in r.Problems) w.WriteStringValue(p);
                w.WriteEndArray();
                w.WriteNumber("recordings", r.Recordings);
                w.WriteNumber("versions", r.Versions);
                w.WriteNumber("events", r.Events);
                w.WriteNumber("chunks", r.Chunks);
                w.WriteNumber("referenced_chunks", r.ReferencedChunks);
                w.WriteNumber("unreferenced_chunks", r.UnreferencedChunks);
                w.WriteNumber("chunk_bytes", r.ChunkBytes);
                w.WriteStartObject("families");
                foreach (var (name, l0, sst, blob) in store.FileStats())
                {
                    w.WriteStartObject(name);
                    w.WriteNumber("l0_files", l0);
                    w.WriteNumber("sst_bytes", sst);
                    w.WriteNumber("blob_bytes", blob);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            });
        }
        else
        {
            foreach (var p in r.Problems) ctx.Out.Line("problem: " + p);
            ctx.Out.Line($"{r.Recordings} recordings, {r.Versions} versions, {r.Events} events, {r.Chunks} chunks ({Human.Bytes(r.ChunkBytes)}), " +
                         $"{r.ReferencedChunks} referenced, {r.UnreferencedChunks} unreferenced (gc removes them)");
            ctx.Out.Line(r.Healthy ? "store is healthy" : $"{r.Problems.Count} problem(s) found");
        }
        return r.Healthy ? 0 : 4;
    }
}
