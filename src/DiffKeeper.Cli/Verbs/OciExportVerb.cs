using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Oci;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

/// <summary>`export --oci FILE.tar` and `export --oci-layout DIR` (see docs/cli.md).</summary>
public static class OciExportVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var archive = a.Value("oci");
        var layoutDir = a.Value("oci-layout");
        if (archive is not null && layoutDir is not null) throw new UsageException("give --oci FILE.tar or --oci-layout DIR, not both");
        if (a.Value("out") is not null) throw new UsageException("--out cannot be combined with --oci/--oci-layout");
        var basePath = a.Value("base");
        if (basePath is not null && !File.Exists(basePath)) throw new NotFoundException($"--base {basePath}: no such file");

        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        long at = a.Value("at") is { } t ? TimeArgs.Moment(t, rec, "--at") : rec.End;
        var state = StateQuery.At(src.Store, rec.Id, at, withChunks: true);
        var name = a.Value("tag") ?? OciExporter.DefaultName(rec, at);
        if (name.Length == 0 || name.Any(char.IsControl)) throw new UsageException("--tag: not an image name");

        string root; string outPath;
        bool tempRoot = archive is not null;
        if (archive is not null)
        {
            outPath = archive;
            var dir = Path.GetDirectoryName(Path.GetFullPath(archive))!;
            if (!Directory.Exists(dir)) throw new NotFoundException($"cannot write {archive}: no directory {dir}");
            // Staged beside the target (same filesystem, so large layers are not copied through /tmp).
            root = Path.Combine(dir, $".{Path.GetFileName(archive)}.oci-{Environment.ProcessId}");
            // Never through something already there (a symlink planted at the staging name would lead elsewhere).
            if (Path.Exists(root) || new FileInfo(root).LinkTarget is not null) throw new UsageException($"cannot stage the image: {root} exists");
            Directory.CreateDirectory(root);
        }
        else
        {
            outPath = root = layoutDir!;
            PrepareEmptyDir(root);
        }

        Export.ExportSummary summary;
        bool ok = false;
        try
        {
            var layout = new OciLayout(root);
            summary = OciExporter.Export(src.Store, rec, state, at, l => GetBase(a, rec, basePath, l), name, layout, ctx.Progress);
            summary.ThrowIfUnsafe("; no image written");
            if (archive is not null)
            {
                var tmp = archive + ".partial";
                try
                {
                    // A leftover (or planted symlink) FILE.tar.partial is removed, not written through.
                    File.Delete(tmp);
                    using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                        layout.WriteTar(fs);
                    File.Move(tmp, archive, overwrite: true);
                }
                finally { if (File.Exists(tmp)) File.Delete(tmp); }
            }
            ok = true;
        }
        finally
        {
            // The archive's staging dir always goes; a layout dir goes only when it was not completed.
            if (tempRoot || !ok) try { Directory.Delete(root, true); } catch (IOException) { }
        }

        foreach (var w in summary.Warnings) Console.Error.WriteLine("diffkeeper: warning: " + w);
        if (a.Json)
            ctx.Out.Json(w =>
            {
                w.WriteString("recording", rec.IdText);
                w.Time("at", at);
                w.WriteString("out", outPath);
                w.WriteString("image", name);
                w.WriteNumber("entries", summary.Entries);
                w.WriteNumber("bytes", summary.Bytes);
                w.WriteNumber("warnings", summary.Warnings.Count);
            });
        else
            ctx.Out.Line($"exported {summary.Entries} entries ({Human.Bytes(summary.Bytes)}) at {Moments.Format(at)} as image {name} to {outPath}");
        return 0;
    }

    /// <summary>
    /// The base: --base IMAGE.tar; else the recorded image (or --image) from containerd's content store; else
    /// none, when the recording names no image (the image is then our layer alone, said in a warning).
    /// </summary>
    private static BaseImage? GetBase(ParsedArgs a, Store.Model.RecordingInfo rec, string? basePath, OciLayout layout)
    {
        if (basePath is not null) return BaseImage.FromArchive(basePath, layout);
        var image = a.Value("image") ?? rec.Image;
        if (image is null)
        {
            Console.Error.WriteLine("diffkeeper: warning: the recording names no image and no --base or --image was given: the image holds only the recorded layer");
            return null;
        }
        var address = Containerd.ContainerdClient.ResolveAddress(a.Value("address"));
        var ns = Containerd.ContainerdClient.ResolveNamespace(a.Value("namespace"), rec.Namespace);
        using var client = Containerd.ContainerdClient.TryConnect(address, ns)
            ?? throw new NotFoundException($"the base image {image} is read from containerd, but there is no containerd socket at {address} (give --address, or the image as --base IMAGE.tar)");
        return BaseImage.FromContainerd(client, image, layout);
    }

    /// <summary>The layout directory must be new or empty, and a real directory (not a symlink to elsewhere).</summary>
    private static void PrepareEmptyDir(string dir)
    {
        var info = new DirectoryInfo(dir);
        if (info.LinkTarget is not null || (File.Exists(dir) && !Directory.Exists(dir)))
            throw new UsageException($"--oci-layout {dir}: not a directory (a symlink or a file)");
        if (info.Exists)
        {
            if (info.EnumerateFileSystemInfos().Any()) throw new UsageException($"--oci-layout {dir}: not empty");
        }
        else
        {
            var parent = Path.GetDirectoryName(Path.GetFullPath(dir))!;
            if (!Directory.Exists(parent)) throw new NotFoundException($"cannot write {dir}: no directory {parent}");
            Directory.CreateDirectory(dir);
        }
    }
}
