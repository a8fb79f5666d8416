using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Oci.Tests;

/// <summary>
/// `export --oci` / `--oci-layout`, end to end: a recording made by the real CLI from an overlay-style upper dir,
/// exported over a busybox base archive, imported into a private containerd and run; skopeo reads the results.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class OciExportTests(CliBinary binary) : IDisposable
{
    private readonly TempDir _tmp = new("dk-oci-test-", onDisk: true);
    private DiffKeeperCli Cli => new(binary.Executable, _tmp.Sub("store"));

    public void Dispose() => _tmp.Dispose();

    private static string U(string text) => RecordedMoment.U(text);
    private const string OddName = RecordedMoment.OddName;
    private const string Describe = RecordedMoment.Describe;
    private string Record() => RecordedMoment.Record(Cli, _tmp.Sub("upper"));
    private static List<string> VisiblePaths(string root) => RecordedMoment.VisiblePaths(root);

    [SkippableFact]
    public void Exported_image_runs_in_containerd_with_the_files_of_export_at_T_laid_over_the_image()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        Record();
        var (baseLayer, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));
        var img = _tmp.Sub("img.tar");
        var res = Cli.Run("export", "app", "--at", "1s", "--oci", img, "--base", baseTar, "--tag", "localhost/dk-oci-test:1", "--json").ExpectOk();
        Assert.Equal("localhost/dk-oci-test:1", res.JsonLines().Single().GetProperty("image").GetString());
        Assert.False(File.Exists(img + ".partial"));
        Assert.Equal(["base.tar", "img.tar", "store", "upper"], Directory.GetFileSystemEntries(_tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var exportDir = _tmp.Sub("export");
        Cli.Run("export", "app", "--at", "1s", "--out", exportDir).ExpectOk();
        var paths = VisiblePaths(exportDir);
        Assert.Contains(Encoding.UTF8.GetString(RawPath.ToBytes(U(OddName))), paths);
        Assert.Contains("data/dir/nested", paths); // the state at 1s, not the end

        var host = Tools.Run(BusyboxArchive.Busybox, ["sh", "-c", Describe, "sh", .. paths], cwd: exportDir);
        Assert.True(host.ExitCode == 0, host.Describe());
        Assert.Contains("hello at 0s", File.ReadAllText(exportDir + "/data/a"));

        // In the container: the same listing (from /), plus what the image layers must and must not show.
        var checks = """
            cd / && sh -c "$0" sh "$@"
            echo ---
            [ -e /etc/gone ] && echo "whiteout failed: /etc/gone exists"
            [ -e /opt/keep/k ] && echo "opaque failed: /opt/keep/k exists"
            cat /opt/other/o /etc/passwd
            """;
        var run = Tools.ImportAndRun(_tmp.Sub("containerd"), img, "localhost/dk-oci-test:1", ["sh", "-c", checks, Describe, .. paths]);
        Assert.True(run.ExitCode == 0, run.Describe());
        var parts = run.Stdout.Split("---\n");
        Assert.Equal(host.Stdout, parts[0]);
        Assert.Equal("untouched\nroot:x:0:0:root:/root:/bin/sh\nextra:x:1:1::/:/bin/sh\n", parts[1]);
        Assert.Contains("data/b regular file 640 12 34 2", host.Stdout); // the hard link survived as one inode
        Assert.False(Directory.Exists(_tmp.Sub("containerd")), "the private containerd's directory was not cleaned up");

        // The archive itself: our layer after the base's, its xattr as a PAX record, whiteout/opaque markers, history.
        var (index, blobs) = ReadArchive(img);
        var manifest = JsonDocument.Parse(blobs[Digest(index.RootElement.GetProperty("manifests")[0])]).RootElement;
        var layers = manifest.GetProperty("layers").EnumerateArray().Select(Digest).ToList();
        Assert.Equal(2, layers.Count);
        Assert.Equal(baseLayer, layers[0]);
        var entries = LayerEntries(blobs[layers[1]]);
        Assert.Contains("etc/.wh.gone", entries.Keys);
        Assert.Contains("opt/keep/.wh..wh..opq", entries.Keys);
        Assert.DoesNotContain(entries.Keys, k => k.Contains("/.wh.") && k.StartsWith("data/", StringComparison.Ordinal));
        Assert.Equal("hi", entries["data/a"].ExtendedAttributes["SCHILY.xattr.user.note"]);
        Assert.DoesNotContain(entries["opt/keep/"].ExtendedAttributes.Keys, k => k.Contains("trusted.overlay"));
        Assert.Equal(TarEntryType.HardLink, entries["data/b"].EntryType);
        var config = JsonDocument.Parse(blobs[Digest(manifest.GetProperty("config"))]).RootElement;
        Assert.Equal(layers[1], config.GetProperty("rootfs").GetProperty("diff_ids")[1].GetString());
        var history = config.GetProperty("history").EnumerateArray().ToList();
        Assert.Equal(2, history.Count);
        Assert.Equal("busybox-static", history[0].GetProperty("created_by").GetString());
        Assert.Contains("diffkeeper export", history[1].GetProperty("created_by").GetString());
        Assert.Contains("upper layer at 2026-11-30T10:00:01", history[1].GetProperty("comment").GetString());
        Assert.Equal(["sh"], config.GetProperty("config").GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
    }

    [SkippableFact]
    public void Without_base_the_recorded_image_is_read_from_containerds_content_store_over_grpc()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        Record();
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));
        var img = _tmp.Sub("img.tar");
        // The base lives only in the private containerd; the CLI reads it through the Images and Content services.
        const string script = """
            dkctr image import "$1" >&2
            "$DK_CLI" --store "$DK_STORE" export app --at 1s --oci "$2" --tag localhost/dk-oci-test:2 --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" >&2
            "$DK_CLI" --store "$DK_STORE" export app --oci "$2.x" --image localhost/no-such:1 --address "$DK_SOCK" --namespace "$DK_NS" >&2 && exit 9
            echo "missing image: exit $?"
            dkctr image rm localhost/dk-base:1 >&2
            dkctr image import "$2" >&2
            dkctr run --rm localhost/dk-oci-test:2 dk-oci-test sh -c 'cat /data/a /opt/other/o; ls /etc'
            """;
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar, img],
            new Dictionary<string, string> { ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store });
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Equal("missing image: exit 3\nhello at 0s\nuntouched\npasswd\n", run.Stdout);
        Assert.False(File.Exists(img + ".x"));
        Assert.False(Directory.Exists(_tmp.Sub("containerd")));
    }

    [SkippableFact]
    public void Skopeo_copies_the_archive_and_reads_the_layout_built_over_a_docker_save_base()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("skopeo"), "needs skopeo");
        Record();
        var (baseLayer, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));
        var img = _tmp.Sub("img.tar");
        Cli.Run("export", "app", "--oci", img, "--base", baseTar).ExpectOk();
        var copy = Tools.Run("skopeo", ["copy", "oci-archive:" + img, "oci:" + _tmp.Sub("copied") + ":x"]);
        Assert.True(copy.ExitCode == 0, copy.Describe());

        // docker save format (manifest.json, CONFIG.json, ID/layer.tar) as the base; the output as a layout dir.
        var dockerTar = _tmp.Sub("base-docker.tar");
        var conv = Tools.Run("skopeo", ["copy", "oci-archive:" + baseTar, "docker-archive:" + dockerTar + ":localhost/dk-base:1"]);
        Assert.True(conv.ExitCode == 0, conv.Describe());
        var layout = _tmp.Sub("layout");
        Cli.Run("export", "app", "--at", "end", "--oci-layout", layout, "--base", dockerTar, "--tag", "localhost/x:y").ExpectOk();
        var inspect = Tools.Run("skopeo", ["inspect", "oci:" + layout + ":localhost/x:y"]);
        Assert.True(inspect.ExitCode == 0, inspect.Describe());
        var layers = JsonDocument.Parse(inspect.Stdout).RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(2, layers.Count);
        Assert.Equal(baseLayer, layers[0]);
        // Only the image's own blobs: the base archive's manifest and config are not carried along.
        Assert.Equal(4, Directory.GetFiles(layout + "/blobs/sha256").Length);
    }

    [SkippableFact]
    public void A_base_archive_whose_blob_does_not_match_its_digest_is_refused_and_nothing_is_written()
    {
        Env.RequireRoot();
        Record();
        var layer = "not the content the name promises"u8.ToArray();
        var wrongName = new string('a', 64);
        var bad = _tmp.Sub("bad.tar");
        BusyboxArchive.WriteArchive(bad, "{\"schemaVersion\":2,\"manifests\":[]}"u8.ToArray(), [(wrongName, layer)]);
        var img = _tmp.Sub("img.tar");
        var r = Cli.Run("export", "app", "--oci", img, "--base", bad).ExpectExit(4);
        Assert.Contains("does not match its digest", r.Stderr);
        Assert.Equal(["bad.tar", "store", "upper"], Directory.GetFileSystemEntries(_tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // A base that is not an image at all.
        File.WriteAllText(_tmp.Sub("junk.tar"), "junk");
        Cli.Run("export", "app", "--oci", img, "--base", _tmp.Sub("junk.tar")).ExpectExit(4);
        Assert.False(File.Exists(img));
    }

    [SkippableFact]
    public void The_layout_dir_must_be_a_new_or_empty_real_directory()
    {
        Env.RequireRoot();
        Record();
        var elsewhere = _tmp.Sub("elsewhere");
        Directory.CreateDirectory(elsewhere);
        Posix.Symlink(elsewhere, _tmp.Sub("link"));
        Cli.Run("export", "app", "--oci-layout", _tmp.Sub("link")).ExpectExit(2);
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));
        File.WriteAllText(elsewhere + "/x", "x");
        Cli.Run("export", "app", "--oci-layout", elsewhere).ExpectExit(2);
        Assert.Single(Directory.GetFileSystemEntries(elsewhere));
        // A symlink planted where the archive is staged is replaced, never written through.
        var victim = _tmp.Sub("victim");
        File.WriteAllText(victim, "outside");
        var img = _tmp.Sub("img.tar");
        Posix.Symlink(victim, img + ".partial");
        Cli.Run("export", "app", "--oci", img).ExpectOk();
        Assert.Equal("outside", File.ReadAllText(victim));
        Assert.False(Path.Exists(img + ".partial"));
        Assert.True(new FileInfo(img).Length > 1024 && new FileInfo(img).LinkTarget is null);
        // Without a base: an image of the one layer.
        var layout = _tmp.Sub("scratch");
        Cli.Run("export", "app", "--oci-layout", layout).ExpectOk();
        Assert.True(File.Exists(layout + "/index.json") && File.Exists(layout + "/oci-layout"));
        Assert.Equal(3, Directory.GetFiles(layout + "/blobs/sha256").Length);
    }

    private static string Digest(JsonElement desc) => desc.GetProperty("digest").GetString()!;

    private static (JsonDocument Index, Dictionary<string, byte[]> Blobs) ReadArchive(string path)
    {
        var blobs = new Dictionary<string, byte[]>();
        JsonDocument? index = null;
        using var fs = File.OpenRead(path);
        using var tar = new TarReader(fs);
        while (tar.GetNextEntry() is { } e)
        {
            if (e.DataStream is null) continue;
            var ms = new MemoryStream();
            e.DataStream.CopyTo(ms);
            if (e.Name == "index.json") index = JsonDocument.Parse(ms.ToArray());
            else if (e.Name.StartsWith("blobs/sha256/", StringComparison.Ordinal)) blobs["sha256:" + e.Name["blobs/sha256/".Length..]] = ms.ToArray();
        }
        return (index ?? throw new Xunit.Sdk.XunitException("no index.json in the archive"), blobs);
    }

    private static Dictionary<string, PaxTarEntry> LayerEntries(byte[] layer)
    {
        var d = new Dictionary<string, PaxTarEntry>();
        using var tar = new TarReader(new MemoryStream(layer));
        while (tar.GetNextEntry(copyData: true) is { } e) d[e.Name] = Assert.IsType<PaxTarEntry>(e);
        return d;
    }
}
