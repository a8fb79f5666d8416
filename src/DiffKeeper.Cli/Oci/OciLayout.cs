using System.Formats.Tar;
using System.Text.RegularExpressions;
using DiffKeeper.Store;

namespace DiffKeeper.Cli.Oci;

/// <summary>
/// An OCI image layout directory being written: blobs/sha256/HEX, index.json, oci-layout. Every blob is written
/// to a temporary name while it is hashed and only then renamed to its digest, so a blob's name is always its
/// content's digest (never a name taken from input).
/// </summary>
public sealed partial class OciLayout(string root)
{
    public string Root { get; } = root;
    private string BlobDir => Path.Combine(Root, "blobs", "sha256");
    private long _seq;

    [GeneratedRegex("^sha256:[0-9a-f]{64}$")]
    private static partial Regex DigestRe();

    public static bool IsDigest(string? d) => d is not null && DigestRe().IsMatch(d);

    public string BlobPath(string digest) =>
        IsDigest(digest) ? Path.Combine(BlobDir, digest[7..]) : throw new CorruptDataException($"not a sha256 digest: {digest}");

    public bool Has(string digest) => File.Exists(BlobPath(digest));

    /// <summary>A stream for a new blob; <see cref="BlobWriter.Commit"/> names it by its digest.</summary>
    public BlobWriter NewBlob()
    {
        Directory.CreateDirectory(BlobDir);
        var tmp = Path.Combine(BlobDir, $".tmp-{Environment.ProcessId}-{++_seq}");
        return new BlobWriter(this, tmp);
    }

    public (string Digest, long Size) AddBlob(byte[] data)
    {
        using var w = NewBlob();
        w.Write(data);
        return w.Commit();
    }

    public void KeepOnly(IEnumerable<string> digests)
    {
        var keep = digests.Select(d => d[7..]).ToHashSet(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(BlobDir))
            if (!keep.Contains(Path.GetFileName(f))) File.Delete(f);
    }

    public void WriteTopLevel(byte[] index)
    {
        File.WriteAllBytes(Path.Combine(Root, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray());
        File.WriteAllBytes(Path.Combine(Root, "index.json"), index);
    }

    /// <summary>The layout as a tar (what `ctr image import`, `skopeo copy oci-archive:` and `podman load` read).</summary>
    public void WriteTar(Stream output)
    {
        using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        tar.WriteEntry(Path.Combine(Root, "oci-layout"), "oci-layout");
        tar.WriteEntry(Path.Combine(Root, "index.json"), "index.json");
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "blobs/") { Mode = (UnixFileMode)0b111_101_101 });
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "blobs/sha256/") { Mode = (UnixFileMode)0b111_101_101 });
        foreach (var f in Directory.GetFiles(BlobDir).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(f);
            if (name.StartsWith('.')) continue;
            tar.WriteEntry(f, "blobs/sha256/" + name);
        }
    }

    /// <summary>A blob being written to a temporary name; <see cref="Commit"/> renames it to its digest.</summary>
    public sealed class BlobWriter(OciLayout layout, string tmp)
        : HashingStream(new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
    {
        private bool _done;

        public (string Digest, long Size) Commit()
        {
            Inner.Flush();
            Inner.Dispose();
            var digest = Digest();
            File.Move(tmp, layout.BlobPath(digest), overwrite: true);
            _done = true;
            return (digest, Length);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Inner.Dispose();
                if (!_done) try { File.Delete(tmp); } catch (IOException) { }
            }
            base.Dispose(disposing);
        }
    }
}
