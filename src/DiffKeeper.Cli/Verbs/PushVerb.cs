using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Oci;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Pack;

namespace DiffKeeper.Cli;

/// <summary>
/// `push REC oci://…` / `pull oci://…`: a recording as an OCI artifact — an OCI 1.1 image manifest with our
/// artifactType, the empty config, one layer holding the packed recording (the `pack` format, checksummed), and
/// the recording's summary in annotations.
/// </summary>
public static class PushVerb
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static int Push(ParsedArgs a, CliContext ctx)
    {
        var target = OciRef.Parse(a.Positionals[1]);
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        var work = Directory.CreateTempSubdirectory("diffkeeper-push-").FullName;
        try
        {
            var tmp = Path.Combine(work, "recording.dkpack");
            PackWriter.Write(src.Store, rec, tmp, _ => { });
            using var reg = new Registry(target, a.Flags.Contains("plain-http"), push: true);
            var ann = new JsonObject
            {
                ["io.diffkeeper.recording.id"] = rec.IdText,
                ["io.diffkeeper.recording.start"] = Moments.Format(rec.Start),
                ["io.diffkeeper.recording.end"] = Moments.Format(rec.End),
                ["org.opencontainers.image.created"] = Moments.Format(Moments.Now()),
            };
            if (rec.Name is { } n) ann["io.diffkeeper.recording.name"] = n;
            if (rec.ContainerId is { } c) ann["io.diffkeeper.recording.container"] = c;
            if (rec.Image is { } i) ann["io.diffkeeper.recording.image"] = i;
            if (rec.ExitStatus is { } e) ann["io.diffkeeper.recording.exit_status"] = e.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var r = RecordingArtifact.Push(reg, tmp, ann, work);
            if (a.Json)
                ctx.Out.Json(w =>
                {
                    w.WriteString("recording", rec.IdText); w.WriteString("ref", target.ToString()); w.WriteString("digest", r.ManifestDigest);
                    w.WriteNumber("bytes", r.TotalBytes); w.WriteNumber("uploaded_bytes", r.UploadedBytes);
                    w.WriteNumber("chunk_layers", r.Layers); w.WriteNumber("reused_layers", r.ReusedLayers);
                });
            else
                ctx.Out.Line($"pushed recording {rec.IdText} ({Human.Bytes(r.TotalBytes)}) to {target} ({r.ManifestDigest}): uploaded {Human.Bytes(r.UploadedBytes)} ({r.UploadedBytes} bytes), {r.ReusedLayers} of {r.Layers} chunk layers were on the registry");
        }
        finally { Directory.Delete(work, true); }
        return 0;
    }

    public static int Pull(ParsedArgs a, CliContext ctx)
    {
        var r = OciRef.Parse(a.Positionals[0]);
        var file = a.Value("output") ?? throw new UsageException("pull needs -o FILE");
        var (id, size) = Fetch(r, a.Flags.Contains("plain-http"), file);
        if (a.Json) ctx.Out.Json(w => { w.WriteString("recording", id); w.WriteString("file", file); w.WriteNumber("bytes", size); });
        else ctx.Out.Line($"pulled recording {id} ({Human.Bytes(size)}) from {r} into {file}");
        return 0;
    }

    /// <summary>`ls oci://HOST/REPO`: every tag whose manifest is a recording artifact, with its annotations.</summary>
    public static int List(ParsedArgs a, CliContext ctx)
    {
        var r = OciRef.Parse(a.Positionals[0]);
        using var reg = new Registry(r, a.Flags.Contains("plain-http"));
        if (!a.Json) ctx.Out.Line($"{"TAG",-24}  {"ID",-16}  {"NAME",-24}  {"START",-30}  {"END",-30}  EXIT");
        foreach (var tag in reg.Tags())
        {
            JsonObject? m;
            try { m = JsonNode.Parse(reg.GetManifest(tag)) as JsonObject; }
            catch (JsonException) { continue; } // not ours to judge: some other artifact
            catch (NotFoundException) { continue; } // deleted while we listed
            if ((string?)m?["artifactType"] != Registry.ArtifactType || m?["annotations"] is not JsonObject ann) continue;
            string? A(string k) => (string?)ann["io.diffkeeper.recording." + k];
            if (a.Json)
                ctx.Out.Json(w =>
                {
                    w.WriteString("tag", tag); w.WriteString("ref", (r with { Reference = tag }).ToString());
                    foreach (var k in new[] { "id", "name", "container", "image", "start", "end", "exit_status" }) w.StringOrNull(k, A(k));
                });
            else
                ctx.Out.Line($"{tag,-24}  {A("id") ?? "-",-16}  {A("name") ?? A("container") ?? "-",-24}  {A("start") ?? "-",-30}  {A("end") ?? "-",-30}  {A("exit_status") ?? "-"}");
        }
        return 0;
    }

    /// <summary>Downloads the artifact's packed recording to FILE (via FILE.partial; nothing is left on failure).</summary>
    public static (string Id, long Size) Fetch(OciRef r, bool plainHttp, string file)
    {
        using var reg = new Registry(r, plainHttp);
        JsonObject manifest;
        try { manifest = JsonNode.Parse(reg.GetManifest()) as JsonObject ?? throw new CorruptDataException($"{r}: the manifest is not a JSON object"); }
        catch (JsonException e) { throw new CorruptDataException($"{r}: the manifest is not valid JSON ({e.Message})"); }
        if ((string?)manifest["artifactType"] != Registry.ArtifactType)
            throw new CorruptDataException($"{r}: not a DiffKeeper recording (artifactType {(string?)manifest["artifactType"] ?? "none"})");
        var layers = manifest["layers"] as JsonArray ?? throw new CorruptDataException($"{r}: the manifest has no layers");
        var tmp = file + ".partial";
        var work = Directory.CreateTempSubdirectory("diffkeeper-pull-").FullName;
        try
        {
            File.Delete(tmp); // a leftover or planted symlink is removed, not written through
            if (layers.OfType<JsonObject>().FirstOrDefault(l => (string?)l["mediaType"] == Registry.PackMediaType) is { } layer)
            {
                // The first layout: the whole pack as one layer.
                var digest = (string?)layer["digest"];
                long size = (long?)layer["size"] ?? -1;
                if (!OciLayout.IsDigest(digest) || size < 0) throw new CorruptDataException($"{r}: the recording layer has no valid digest or size");
                using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write);
                reg.GetBlob(digest!, size, fs);
            }
            else RecordingArtifact.Fetch(reg, r.ToString(), layers, tmp, work);
            // The pack's own checksums are checked when it is opened: a bad one never becomes FILE.
            string id;
            var (store, rec) = PackReader.Open(tmp);
            using (store) id = rec.IdText;
            File.Move(tmp, file, overwrite: true);
            return (id, new FileInfo(file).Length);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            Directory.Delete(work, true);
        }
    }
}
