using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffKeeper.Cli.Export;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli.Oci;

/// <summary>
/// `export --oci FILE.tar` / `--oci-layout DIR`: the base image's layers, then one uncompressed layer holding the
/// upper state at T, a config whose diff_ids and history name that layer's origin, an OCI manifest and an index
/// that names the image. Uncompressed, so the layer's digest is its diff_id and nothing is hashed twice.
/// </summary>
public static class OciExporter
{
    public const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar";

    // Media types hold '+': written as is rather than "\u002B", for people reading the JSON (both are valid).
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static ExportSummary Export(RecordingStore store, RecordingInfo rec, RecordingState state, long at, Func<OciLayout, BaseImage?> getBase,
        string imageName, OciLayout layout, Progress progress)
    {
        BaseImage baseImage = getBase(layout) ?? Scratch();

        ExportSummary summary;
        string layerDigest; long layerSize;
        using (var w = layout.NewBlob())
        {
            summary = new TarExporter(store, w, progress, ociLayer: true).Export(state);
            (layerDigest, layerSize) = w.Commit();
        }

        var config = baseImage.Config;
        var rootfs = config["rootfs"] as JsonObject ?? new JsonObject { ["type"] = "layers" };
        config["rootfs"] = rootfs;
        var diffIds = rootfs["diff_ids"] as JsonArray ?? [];
        rootfs["diff_ids"] = diffIds;
        if (diffIds.Count != baseImage.Layers.Count)
            throw new CorruptDataException($"the base image: its config lists {diffIds.Count} layers, the manifest {baseImage.Layers.Count}");
        diffIds.Add((JsonNode)JsonValue.Create(layerDigest)); // the non-generic Add: trimming-safe

        var created = Moments.Format(Moments.Now());
        config["created"] = created;
        config["os"] ??= "linux";
        config["architecture"] ??= "amd64";
        var history = config["history"] as JsonArray ?? [];
        config["history"] = history;
        // History has one non-empty entry per layer; an image without history gets placeholders for its layers.
        int nonEmpty = history.Count(h => h?["empty_layer"]?.GetValue<bool>() != true);
        for (; nonEmpty < baseImage.Layers.Count; nonEmpty++) history.Add((JsonNode)new JsonObject { ["created_by"] = "base image layer" });
        history.Add((JsonNode)new JsonObject
        {
            ["created"] = created,
            ["created_by"] = $"diffkeeper export {rec.IdText} --at {Moments.Format(at)}",
            ["comment"] = $"DiffKeeper recording {rec.IdText}" + ((rec.Name ?? rec.ContainerId) is { } who ? $" ({who})" : "") +
                          (rec.Image is { } img ? $" of image {img}" : "") + $": the container's upper layer at {Moments.Format(at)}",
        });
        var configBytes = Encoding.UTF8.GetBytes(config.ToJsonString(Json));
        var (configDigest, configSize) = layout.AddBlob(configBytes);

        var layers = new JsonArray();
        foreach (var l in baseImage.Layers) layers.Add((JsonNode)l.DeepClone());
        layers.Add((JsonNode)new JsonObject { ["mediaType"] = LayerMediaType, ["digest"] = layerDigest, ["size"] = layerSize });
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = new JsonObject { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = configDigest, ["size"] = configSize },
            ["layers"] = layers,
            ["annotations"] = new JsonObject
            {
                ["org.opencontainers.image.created"] = created,
                ["io.diffkeeper.recording"] = rec.IdText,
                ["io.diffkeeper.at"] = Moments.Format(at),
            },
        };
        var manifestBytes = Encoding.UTF8.GetBytes(manifest.ToJsonString(Json));
        var (manifestDigest, manifestSize) = layout.AddBlob(manifestBytes);

        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["digest"] = manifestDigest,
                ["size"] = manifestSize,
                ["platform"] = new JsonObject { ["architecture"] = (string?)config["architecture"], ["os"] = (string?)config["os"] },
                ["annotations"] = new JsonObject
                {
                    // containerd's importer takes the full name; skopeo and podman read ref.name.
                    ["io.containerd.image.name"] = imageName,
                    ["org.opencontainers.image.ref.name"] = imageName,
                },
            }),
        };
        layout.WriteTopLevel(Encoding.UTF8.GetBytes(index.ToJsonString(Json)));
        // The base archive's own manifest, config (and any other image it held) are not part of this image.
        layout.KeepOnly([configDigest, manifestDigest, .. layers.Select(l => (string)l!["digest"]!)]);
        return summary;
    }

    /// <summary>No base: an image of the one layer (runs only when the state holds a whole root filesystem).</summary>
    private static BaseImage Scratch() => new()
    {
        Config = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux", ["config"] = new JsonObject(), ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() } },
        Layers = [],
    };

    /// <summary>A default image name: the recording's name and the moment as a tag-safe offset.</summary>
    public static string DefaultName(RecordingInfo rec, long at)
    {
        var repo = new StringBuilder();
        foreach (var c in (rec.Name ?? rec.ContainerId ?? rec.IdText).ToLowerInvariant())
            repo.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-');
        var name = repo.ToString().Trim('-', '.', '_');
        if (name.Length == 0) name = rec.IdText;
        long ms = Math.Max(0, (at - rec.Start) / 1_000_000);
        return $"localhost/diffkeeper/{name}:at-{ms}ms";
    }
}
