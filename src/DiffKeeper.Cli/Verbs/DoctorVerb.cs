using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Maintenance;

namespace DiffKeeper.Cli;

public static class DoctorVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
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
