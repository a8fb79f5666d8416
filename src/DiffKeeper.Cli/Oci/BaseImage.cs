using System.Formats.Tar;
using System.Text.Json.Nodes;
using DiffKeeper.Store;

namespace DiffKeeper.Cli.Oci;

/// <summary>
/// The recorded image's layers and config, read from an image archive: an OCI archive (oci-layout, index.json,
/// blobs/sha256/…) or a `docker save` archive (manifest.json, CONFIG.json, ID/layer.tar). Every blob is copied
/// into the output layout under its verified digest; names in the archive are never used as output paths.
/// </summary>
public sealed class BaseImage
{
    public required JsonObject Config { get; init; }
    /// <summary>Layer descriptors (mediaType, digest, size) in order, bottom first.</summary>
    public required List<JsonObject> Layers { get; init; }

    private const int MaxJson = 4 << 20; // a manifest or config larger than this is not one we should parse

    public static BaseImage FromArchive(string archive, OciLayout layout)
    {
        var what = "--base " + archive;
        if (!File.Exists(archive)) throw new NotFoundException($"{what}: no such file");
        var json = new Dictionary<string, byte[]>(StringComparer.Ordinal); // top-level JSON files by name
        var other = new Dictionary<string, (string Digest, long Size)>(StringComparer.Ordinal); // docker save: path → blob
        var links = new Dictionary<string, string>(StringComparer.Ordinal);
        using (var fs = File.OpenRead(archive))
        {
            TarReader reader;
            try { reader = new TarReader(fs); } catch (Exception e) when (e is InvalidDataException or FormatException) { throw Bad(what, e); }
            using (reader)
            {
                while (true)
                {
                    TarEntry? e;
                    try { e = reader.GetNextEntry(); }
                    catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException) { throw Bad(what, ex); }
                    if (e is null) break;
                    var name = Normalize(e.Name);
                    if (e.EntryType is TarEntryType.SymbolicLink)
                    {
                        // docker save links a repeated layer to its first copy ("../ID/layer.tar").
                        links[name] = Normalize(Path.GetFullPath(e.LinkName, "/" + (Path.GetDirectoryName(name) ?? "")).TrimStart('/'));
                        continue;
                    }
                    if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || e.DataStream is null) continue;
                    if (name is "index.json" or "manifest.json" or "oci-layout" || (!name.Contains('/') && name.EndsWith(".json", StringComparison.Ordinal)))
                    {
                        if (e.Length > MaxJson) throw new CorruptDataException($"{what}: {name} is {e.Length} bytes, too large");
                        var buf = new MemoryStream();
                        e.DataStream.CopyTo(buf);
                        json[name] = buf.ToArray();
                        if (name is "index.json" or "manifest.json" or "oci-layout") continue;
                    }
                    using var w = layout.NewBlob();
                    if (json.TryGetValue(name, out var small)) w.Write(small); else e.DataStream.CopyTo(w);
                    var blob = w.Commit();
                    if (name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && blob.Digest != "sha256:" + name["blobs/sha256/".Length..])
                        throw new CorruptDataException($"{what}: {name} does not match its digest (content is {blob.Digest})");
                    other[name] = blob;
                }
            }
        }

        if (json.TryGetValue("index.json", out var indexBytes)) return FromOci(what, indexBytes, layout);
        if (json.TryGetValue("manifest.json", out var dm)) return FromDockerSave(what, dm, json, other, links);
        throw new CorruptDataException($"{what}: neither an OCI archive (index.json) nor a docker save archive (manifest.json)");
    }

    private static BaseImage FromOci(string archive, byte[] indexBytes, OciLayout layout) =>
        FromIndex(archive, ParseObject(archive, "index.json", indexBytes), layout, static _ => { });

    /// <summary>
    /// The image named in containerd's image store, its blobs read from containerd's content store (gRPC) into
    /// the layout, each verified against its digest as it is written.
    /// </summary>
    public static BaseImage FromContainerd(Containerd.ContainerdClient client, string image, OciLayout layout)
    {
        var target = client.GetImageTarget(image);
        var where = $"image {image} in containerd";
        void Fetch(string digest)
        {
            if (layout.Has(digest)) return;
            using var w = layout.NewBlob();
            client.ReadBlob(digest, w);
            var (got, _) = w.Commit();
            if (got != digest) throw new CorruptDataException($"{where}: blob {digest} read back as {got}");
        }
        var desc = new JsonObject { ["mediaType"] = target.MediaType, ["digest"] = target.Digest, ["size"] = target.Size };
        return FromIndex(where, new JsonObject { ["manifests"] = new JsonArray((JsonNode)desc) }, layout, Fetch);
    }

    private static BaseImage FromIndex(string archive, JsonObject index, OciLayout layout, Action<string> fetch)
    {
        var m = PickManifest(archive, index, layout, fetch, depth: 0);
        var manifest = ParseObject(archive, "the manifest", ReadBlob(archive, layout, m, fetch));
        var configDesc = manifest["config"] as JsonObject ?? throw new CorruptDataException($"{archive}: the manifest has no config");
        var config = ParseObject(archive, "the config", ReadBlob(archive, layout, configDesc, fetch));
        var layers = new List<JsonObject>();
        foreach (var l in manifest["layers"] as JsonArray ?? [])
        {
            if (l is not JsonObject lo || !OciLayout.IsDigest((string?)lo["digest"])) throw new CorruptDataException($"{archive}: a layer descriptor without a sha256 digest");
            fetch((string)lo["digest"]!);
            if (!layout.Has((string)lo["digest"]!)) throw new CorruptDataException($"{archive}: layer {lo["digest"]} is not in the archive");
            layers.Add(new JsonObject
            {
                ["mediaType"] = OciMediaType((string?)lo["mediaType"]),
                ["digest"] = (string)lo["digest"]!,
                ["size"] = new FileInfo(layout.BlobPath((string)lo["digest"]!)).Length,
            });
        }
        return new BaseImage { Config = config, Layers = layers };
    }

    /// <summary>The index's image for linux/amd64 (or its only one), following nested indexes.</summary>
    private static JsonObject PickManifest(string archive, JsonObject index, OciLayout layout, Action<string> fetch, int depth)
    {
        if (depth > 4) throw new CorruptDataException($"{archive}: indexes nested too deep");
        var all = (index["manifests"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        if (all.Count == 0) throw new CorruptDataException($"{archive}: index.json lists no image");
        var pick = all.FirstOrDefault(d => (string?)d["platform"]?["os"] == "linux" && (string?)d["platform"]?["architecture"] == Arch()) ?? all[0];
        var mt = (string?)pick["mediaType"];
        if (mt is "application/vnd.oci.image.index.v1+json" or "application/vnd.docker.distribution.manifest.list.v2+json")
            return PickManifest(archive, ParseObject(archive, "a nested index", ReadBlob(archive, layout, pick, fetch)), layout, fetch, depth + 1);
        return pick;
    }

    private static string Arch() => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        _ => "amd64",
    };

    private static BaseImage FromDockerSave(string archive, byte[] manifestBytes, Dictionary<string, byte[]> json,
        Dictionary<string, (string Digest, long Size)> blobs, Dictionary<string, string> links)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(manifestBytes); } catch (System.Text.Json.JsonException e) { throw Bad(archive, e); }
        if (root is not JsonArray arr || arr.Count == 0 || arr[0] is not JsonObject m) throw new CorruptDataException($"{archive}: manifest.json lists no image");
        var configName = Normalize((string?)m["Config"] ?? "");
        if (!json.TryGetValue(configName, out var configBytes) && !(blobs.TryGetValue(configName, out _)))
            throw new CorruptDataException($"{archive}: config {configName} is not in the archive");
        var config = ParseObject(archive, configName, configBytes ?? []);
        var layers = new List<JsonObject>();
        foreach (var l in m["Layers"] as JsonArray ?? [])
        {
            var name = Normalize((string?)l ?? "");
            for (int hops = 0; links.TryGetValue(name, out var to) && hops < 8; hops++) name = to;
            if (!blobs.TryGetValue(name, out var b)) throw new CorruptDataException($"{archive}: layer {name} is not in the archive");
            // docker save's layer.tar files are uncompressed (newer ones sit under blobs/sha256 but are still tars).
            layers.Add(new JsonObject { ["mediaType"] = "application/vnd.oci.image.layer.v1.tar", ["digest"] = b.Digest, ["size"] = b.Size });
        }
        return new BaseImage { Config = config, Layers = layers };
    }

    /// <summary>Docker's layer media types are byte-compatible with OCI's; the output manifest is OCI.</summary>
    private static string OciMediaType(string? mt) => mt switch
    {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        null => "application/vnd.oci.image.layer.v1.tar",
        _ => mt,
    };

    private static byte[] ReadBlob(string archive, OciLayout layout, JsonObject desc, Action<string> fetch)
    {
        var d = (string?)desc["digest"];
        if (!OciLayout.IsDigest(d)) throw new CorruptDataException($"{archive}: a descriptor without a sha256 digest");
        if ((long?)desc["size"] > MaxJson) throw new CorruptDataException($"{archive}: blob {d} is too large for a manifest or config");
        fetch(d!);
        if (!layout.Has(d!)) throw new CorruptDataException($"{archive}: blob {d} is not in the archive");
        var path = layout.BlobPath(d!);
        if (new FileInfo(path).Length > MaxJson) throw new CorruptDataException($"{archive}: blob {d} is too large for a manifest or config");
        return File.ReadAllBytes(path);
    }

    private static JsonObject ParseObject(string archive, string what, byte[] bytes)
    {
        try
        {
            return JsonNode.Parse(bytes) as JsonObject ?? throw new CorruptDataException($"{archive}: {what} is not a JSON object");
        }
        catch (System.Text.Json.JsonException e) { throw new CorruptDataException($"{archive}: {what} is not valid JSON ({e.Message})"); }
    }

    private static string Normalize(string name)
    {
        while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        return name.TrimStart('/');
    }

    private static CorruptDataException Bad(string archive, Exception e) => new($"{archive}: not a readable tar archive ({e.Message})");
}
