using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffKeeper.Store;

namespace DiffKeeper.Cli.Oci;

/// <summary>
/// A packed recording (docs/store.md) as the layers of an OCI artifact, laid out so that a second push to the same
/// repository uploads only what the registry lacks:
///   layer 0  meta    the pack's header and every record but the chunks (recording, versions, events, end)
///   layer 1  index   which chunks of the recording each chunk layer holds ("DKINDEX1", per chunk layer: varint
///                    count, count × 32-byte hashes)
///   layer 2… chunks  chunk records as in the pack, ~4 MiB a layer, content-addressed
/// A push reads the index of earlier recordings in the repository and reuses their chunk layers when at least half
/// of a layer's bytes are chunks this recording needs (the registry has them: HEAD says so, nothing is uploaded);
/// the chunks left over go into new layers. A pull reassembles the pack from the layers (each verified against its
/// digest, only the chunks the index names), then opens it, which checks every record.
/// </summary>
public static class RecordingArtifact
{
    public const string MetaMediaType = "application/vnd.diffkeeper.recording.meta.v1";
    public const string IndexMediaType = "application/vnd.diffkeeper.recording.index.v1";
    public const string ChunksMediaType = "application/vnd.diffkeeper.recording.chunks.v1";
    public const long LayerTarget = 4 << 20;
    private const long MaxIndex = 256L << 20;
    private const int MaxBases = 4, MaxTagsScanned = 200;

    // From the pack format (src/DiffKeeper.Store/Pack/PackFormat.cs).
    private const int HeaderSize = 16;
    private const byte EndRecord = 0, ChunkRecord = 4;
    private static ReadOnlySpan<byte> HeaderMagic => "DKPACK\r\n"u8;
    private static ReadOnlySpan<byte> FooterMagic => "DKPACKZ\n"u8;
    private static ReadOnlySpan<byte> IndexMagic => "DKINDEX1"u8;

    private readonly record struct Chunk(string Hash, long Start, long Length);

    public sealed record PushResult(string ManifestDigest, long TotalBytes, long UploadedBytes, int Layers, int ReusedLayers);

    /// <summary>Pushes <paramref name="pack"/> as the artifact; <paramref name="annotations"/> go into the manifest.</summary>
    public static PushResult Push(Registry reg, string pack, JsonObject annotations, string work)
    {
        var meta = Path.Combine(work, "meta");
        var chunks = Split(pack, meta);
        var known = KnownLayers(reg, (string?)annotations["io.diffkeeper.recording.name"]);

        // Reuse an existing layer when the registry still has it and half its bytes are ours.
        var byLayer = new Dictionary<string, List<Chunk>>();
        foreach (var c in chunks)
            if (known.TryGetValue(c.Hash, out var l)) { if (!byLayer.TryGetValue(l.Digest, out var list)) byLayer[l.Digest] = list = []; list.Add(c); }
        var layers = new List<(string Digest, long Size, List<Chunk> Chunks)>();
        var placed = new HashSet<string>();
        foreach (var (digest, list) in byLayer)
        {
            long size = known[list[0].Hash].Size;
            if (list.Sum(c => c.Length) * 2 < size || !reg.HasBlob(digest)) continue;
            layers.Add((digest, size, list));
            foreach (var c in list) placed.Add(c.Hash);
        }
        int reused = layers.Count;

        long total = 0;
        void Upload(string digest, long size, Func<Stream> open) { reg.PushBlob(digest, size, open); total += size; }
        total += layers.Sum(l => l.Size); // on the registry: HEAD said so above

        // The rest, in pack order, into new layers (content-addressed: the same chunks make the same layer again).
        using (var src = new FileStream(pack, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            var pending = new List<Chunk>();
            long pendingBytes = 0;
            void Flush()
            {
                if (pending.Count == 0) return;
                var file = Path.Combine(work, "layer");
                string digest; long size;
                using (var fs = new FileStream(file, FileMode.Create, FileAccess.Write))
                using (var h = new HashingStream(fs))
                {
                    foreach (var c in pending) Copy(src, c.Start, c.Length, h);
                    (digest, size) = (h.Digest(), h.Length);
                }
                Upload(digest, size, () => File.OpenRead(file));
                layers.Add((digest, size, [.. pending]));
                pending.Clear();
                pendingBytes = 0;
            }
            foreach (var c in chunks)
            {
                if (!placed.Add(c.Hash)) continue;
                pending.Add(c);
                pendingBytes += c.Length;
                if (pendingBytes >= LayerTarget) Flush();
            }
            Flush();
        }

        var index = new MemoryStream();
        index.Write(IndexMagic);
        foreach (var l in layers)
        {
            WriteVarint(index, (ulong)l.Chunks.Count);
            foreach (var c in l.Chunks) index.Write(Convert.FromHexString(c.Hash));
        }
        var indexBytes = index.ToArray();
        var indexDigest = Sha(indexBytes);
        Upload(indexDigest, indexBytes.Length, () => new MemoryStream(indexBytes));
        string metaDigest;
        using (var f = File.OpenRead(meta)) metaDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f));
        long metaSize = new FileInfo(meta).Length;
        Upload(metaDigest, metaSize, () => File.OpenRead(meta));
        var empty = "{}"u8.ToArray();
        var emptyDigest = Sha(empty);
        Upload(emptyDigest, empty.Length, () => new MemoryStream(empty));

        var layerList = new JsonArray(
            new JsonObject { ["mediaType"] = MetaMediaType, ["digest"] = metaDigest, ["size"] = metaSize },
            new JsonObject { ["mediaType"] = IndexMediaType, ["digest"] = indexDigest, ["size"] = indexBytes.Length });
        foreach (var l in layers) layerList.Add((JsonNode)new JsonObject { ["mediaType"] = ChunksMediaType, ["digest"] = l.Digest, ["size"] = l.Size });
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = Registry.ManifestMediaType,
            ["artifactType"] = Registry.ArtifactType,
            ["config"] = new JsonObject { ["mediaType"] = Registry.EmptyMediaType, ["digest"] = emptyDigest, ["size"] = empty.Length },
            ["layers"] = layerList,
            ["annotations"] = annotations,
        };
        var md = reg.PutManifest(Encoding.UTF8.GetBytes(manifest.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })));
        return new PushResult(md, total, reg.UploadedBytes, layers.Count, reused);
    }

    /// <summary>
    /// Reassembles the pack from a manifest of this layout into <paramref name="output"/> (a new file); every blob
    /// is checked against its digest, and the pack's own checks run when it is opened.
    /// </summary>
    public static void Fetch(Registry reg, string what, JsonArray layers, string output, string work)
    {
        var descs = layers.OfType<JsonObject>().Select(l => (Type: (string?)l["mediaType"], Digest: (string?)l["digest"], Size: (long?)l["size"] ?? -1)).ToList();
        if (descs.Count < 2 || descs[0].Type != MetaMediaType || descs[1].Type != IndexMediaType || descs.Skip(2).Any(d => d.Type != ChunksMediaType))
            throw new CorruptDataException($"{what}: the layers are not meta, index, chunks…");
        if (descs.Any(d => !OciLayout.IsDigest(d.Digest) || d.Size < 0)) throw new CorruptDataException($"{what}: a layer has no valid digest or size");
        if (descs[1].Size > MaxIndex) throw new CorruptDataException($"{what}: the index is {descs[1].Size} bytes, over {MaxIndex}");
        var wanted = ReadIndex(reg, descs[1].Digest!, descs[1].Size, what);
        if (wanted.Count != descs.Count - 2) throw new CorruptDataException($"{what}: the index names {wanted.Count} chunk layers, the manifest {descs.Count - 2}");

        var meta = Path.Combine(work, "meta");
        using (var fs = new FileStream(meta, FileMode.Create, FileAccess.ReadWrite)) reg.GetBlob(descs[0].Digest!, descs[0].Size, fs);
        using var outFile = new FileStream(output, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        var hashed = new HashingStream(outFile);
        byte[] end;
        using (var m = new FileStream(meta, FileMode.Open, FileAccess.Read))
        {
            var head = new byte[HeaderSize];
            if (m.ReadAtLeast(head, HeaderSize, false) < HeaderSize || !head.AsSpan(0, 8).SequenceEqual(HeaderMagic))
                throw new CorruptDataException($"{what}: the meta layer is not the start of a packed recording");
            hashed.Write(head);
            long endAt = -1;
            foreach (var (type, start, length, _) in Records(m, HeaderSize, m.Length, what))
            {
                if (type == EndRecord) { endAt = start; break; }
                if (type == ChunkRecord) throw new CorruptDataException($"{what}: the meta layer holds a chunk");
                Copy(m, start, length, hashed);
            }
            if (endAt < 0) throw new CorruptDataException($"{what}: the meta layer has no end record");
            end = new byte[m.Length - endAt];
            m.Seek(endAt, SeekOrigin.Begin);
            m.ReadExactly(end);
        }
        var written = new HashSet<string>();
        for (int i = 2; i < descs.Count; i++)
        {
            var file = Path.Combine(work, "layer");
            using (var fs = new FileStream(file, FileMode.Create, FileAccess.ReadWrite)) reg.GetBlob(descs[i].Digest!, descs[i].Size, fs);
            using var l = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var want = wanted[i - 2];
            var hash = new byte[32];
            foreach (var (type, start, length, payload) in Records(l, 0, l.Length, what))
            {
                if (type != ChunkRecord) throw new CorruptDataException($"{what}: a chunk layer holds a record of type {type}");
                if (length - (payload - start) < 32 + 1) throw new CorruptDataException($"{what}: a chunk record is too short");
                l.Seek(payload, SeekOrigin.Begin);
                l.ReadExactly(hash);
                var h = Convert.ToHexStringLower(hash);
                if (want.Contains(h) && written.Add(h)) Copy(l, start, length, hashed);
            }
            File.Delete(file);
        }
        var missing = wanted.SelectMany(w => w).Where(h => !written.Contains(h)).Take(1).ToList();
        if (missing.Count > 0) throw new CorruptDataException($"{what}: chunk {missing[0]} named by the index is in none of its layers");
        hashed.Write(end);
        var footer = new byte[48];
        FooterMagic.CopyTo(footer);
        BinaryPrimitives.WriteInt64LittleEndian(footer.AsSpan(8), hashed.Length);
        Convert.FromHexString(hashed.Digest()[7..]).CopyTo(footer, 16);
        outFile.Write(footer);
        outFile.Flush(true);
    }

    /// <summary>Writes the pack's non-chunk records to <paramref name="meta"/>; returns its chunk records in order.</summary>
    private static List<Chunk> Split(string pack, string meta)
    {
        var chunks = new List<Chunk>();
        using var src = new FileStream(pack, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var m = new FileStream(meta, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        var head = new byte[HeaderSize];
        src.ReadExactly(head);
        m.Write(head);
        var hash = new byte[32];
        foreach (var (type, start, length, payload) in Records(src, HeaderSize, src.Length - 48, pack))
        {
            if (type == ChunkRecord)
            {
                src.Seek(payload, SeekOrigin.Begin);
                src.ReadExactly(hash);
                chunks.Add(new Chunk(Convert.ToHexStringLower(hash), start, length));
                continue;
            }
            Copy(src, start, length, m);
            if (type == EndRecord) break;
        }
        return chunks;
    }

    /// <summary>The records of a pack-format stream from <paramref name="from"/> to <paramref name="to"/>: type, start, total length, payload start.</summary>
    private static IEnumerable<(byte Type, long Start, long Length, long Payload)> Records(Stream s, long from, long to, string what)
    {
        long pos = from;
        while (pos < to)
        {
            s.Seek(pos, SeekOrigin.Begin);
            int type = s.ReadByte();
            ulong len = 0;
            int n = 1;
            for (int shift = 0; ; shift += 7)
            {
                int b = s.ReadByte();
                n++;
                if (b < 0 || shift > 35) throw new CorruptDataException($"{what}: a record at offset {pos} is cut off or has a bad length");
                len |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) break;
            }
            long total = n + (long)len;
            if (type < 0 || pos + total > to) throw new CorruptDataException($"{what}: a record at offset {pos} runs past the end");
            yield return ((byte)type, pos, total, pos + n);
            pos += total;
        }
    }

    private static void Copy(Stream src, long start, long length, Stream dst)
    {
        var buf = new byte[Math.Min(length, 1 << 16)];
        src.Seek(start, SeekOrigin.Begin);
        while (length > 0)
        {
            int n = src.Read(buf, 0, (int)Math.Min(buf.Length, length));
            if (n <= 0) throw new EndOfStreamException();
            dst.Write(buf, 0, n);
            length -= n;
        }
    }

    /// <summary>
    /// Chunk → the chunk layer holding it, from the index of up to <see cref="MaxBases"/> recordings in the repository
    /// (the same name first, then the newest). Anything unreadable there only means less reuse.
    /// </summary>
    private static Dictionary<string, (string Digest, long Size)> KnownLayers(Registry reg, string? name)
    {
        var known = new Dictionary<string, (string, long)>();
        var candidates = new List<(JsonObject Manifest, string? Name, string Created)>();
        try
        {
            foreach (var tag in reg.Tags().Take(MaxTagsScanned))
            {
                try
                {
                    if (JsonNode.Parse(reg.GetManifest(tag)) is JsonObject m && (string?)m["artifactType"] == Registry.ArtifactType
                        && m["layers"] is JsonArray { Count: > 1 } ls && (string?)ls[1]?["mediaType"] == IndexMediaType)
                        candidates.Add((m, (string?)m["annotations"]?["io.diffkeeper.recording.name"], (string?)m["annotations"]?["org.opencontainers.image.created"] ?? ""));
                }
                catch (Exception e) when (e is JsonException or CorruptDataException or NotFoundException) { }
            }
        }
        catch (NotFoundException) { return known; }
        foreach (var (m, _, _) in candidates.OrderByDescending(c => name is not null && c.Name == name).ThenByDescending(c => c.Created, StringComparer.Ordinal).Take(MaxBases))
        {
            var ls = ((JsonArray)m["layers"]!).OfType<JsonObject>().ToList();
            var (digest, size) = ((string?)ls[1]["digest"], (long?)ls[1]["size"] ?? -1);
            if (!OciLayout.IsDigest(digest) || size < 0 || size > MaxIndex) continue;
            List<HashSet<string>> wanted;
            try { wanted = ReadIndex(reg, digest!, size, "an earlier recording"); }
            catch (CorruptDataException) { continue; }
            if (wanted.Count != ls.Count - 2) continue;
            for (int i = 0; i < wanted.Count; i++)
            {
                var (ld, lsz) = ((string?)ls[i + 2]["digest"], (long?)ls[i + 2]["size"] ?? -1);
                if (!OciLayout.IsDigest(ld) || lsz < 0) continue;
                foreach (var h in wanted[i]) known.TryAdd(h, (ld!, lsz));
            }
        }
        return known;
    }

    private static List<HashSet<string>> ReadIndex(Registry reg, string digest, long size, string what)
    {
        var ms = new MemoryStream();
        reg.GetBlob(digest, size, ms);
        var b = ms.GetBuffer().AsSpan(0, (int)ms.Length);
        if (!b.StartsWith(IndexMagic)) throw new CorruptDataException($"{what}: the index layer has a bad magic");
        int pos = IndexMagic.Length;
        var list = new List<HashSet<string>>();
        while (pos < b.Length)
        {
            ulong count = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (pos >= b.Length || shift > 35) throw new CorruptDataException($"{what}: the index is cut off");
                byte x = b[pos++];
                count |= (ulong)(x & 0x7f) << shift;
                if (x < 0x80) break;
            }
            if (count > (ulong)(b.Length - pos) / 32) throw new CorruptDataException($"{what}: the index is cut off");
            var set = new HashSet<string>();
            for (ulong i = 0; i < count; i++, pos += 32) set.Add(Convert.ToHexStringLower(b.Slice(pos, 32)));
            list.Add(set);
        }
        return list;
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));
}
