using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Cli;

public static class LsVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        if (a.Positionals.Count == 1)
        {
            if (!Oci.OciRef.Is(a.Positionals[0])) throw new UsageException("ls takes no recording, only oci://HOST/REPO");
            return PushVerb.List(a, ctx);
        }
        if (!RecordingStore.Exists(ctx.StoreDir))
        {
            if (!a.Json) ctx.Out.Line("no recordings (no store at " + ctx.StoreDir + ")");
            return 0;
        }
        using var store = RecordingStore.Open(ctx.StoreDir, readOnly: true);
        var recs = store.ListRecordings();
        if (!a.Json) ctx.Out.Line($"{"ID",-16}  {"NAME",-24}  {"START",-30}  {"END",-30}  {"EXIT",4}  {"VERSIONS",8}  BYTES");
        foreach (var r in recs)
        {
            long versions = store.CountVersions(r.Id);
            if (a.Json)
                ctx.Out.Json(w => Fields(w, r, versions));
            else
            {
                var name = r.Name ?? r.ContainerId ?? "-";
                ctx.Out.Line($"{r.IdText,-16}  {Clip(name, 24),-24}  {Moments.Format(r.Start),-30}  {Moments.Format(r.End),-30}  {(r.ExitStatus?.ToString() ?? "-"),4}  {versions,8}  {Human.Bytes(r.StoredBytes)}");
            }
        }
        return 0;
    }

    /// <summary>The fields of one `ls --json` row (also the start of each `collect` index entry).</summary>
    public static void Fields(System.Text.Json.Utf8JsonWriter w, Store.Model.RecordingInfo r, long versions)
    {
        w.WriteString("id", r.IdText);
        w.StringOrNull("name", r.Name);
        w.StringOrNull("container_id", r.ContainerId);
        w.StringOrNull("namespace", r.Namespace);
        w.StringOrNull("image", r.Image);
        w.Time("start", r.Start);
        w.Time("end", r.End);
        if (r.ExitStatus is int s) w.WriteNumber("exit_status", s); else w.WriteNull("exit_status");
        w.WriteNumber("versions", versions);
        w.WriteNumber("bytes", r.StoredBytes);
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
