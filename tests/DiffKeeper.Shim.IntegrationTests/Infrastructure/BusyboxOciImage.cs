using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// Builds a one-layer OCI image archive from Debian's busybox-static (no registry is reachable in CI):
/// bin/busybox plus one symlink per applet, a config with PATH and Cmd sh, index.json, oci-layout, blobs by sha256.
/// </summary>
public static class BusyboxOciImage
{
    public const string Name = "docker.io/library/busybox:latest";
    public const string BusyboxPath = "/bin/busybox";

    /// <param name="extraBinaries">Executables added to /bin (e.g. a static test helper the image lacks).</param>
    /// <param name="name">the image name (the CRI tests also make a pause-like image: same layer, a command that stays)</param>
    /// <param name="cmdJson">the config's Cmd as a JSON array</param>
    public static async Task WriteArchiveAsync(string archivePath, IReadOnlyList<string>? extraBinaries = null, string name = Name, string cmdJson = "[\"sh\"]")
    {
        var applets = await ExternalCommand.RunAsync(BusyboxPath, new[] { "--list" }, TimeSpan.FromSeconds(10));
        if (applets.ExitCode != 0) throw new InvalidOperationException("busybox --list failed:\n" + applets);

        var layer = BuildLayer(applets.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), extraBinaries ?? []);
        var layerDigest = Sha256(layer);
        var config = Encoding.UTF8.GetBytes(
            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":" + cmdJson + "}," +
            $"\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{layerDigest}\"]}}}}");
        var configDigest = Sha256(config);
        var manifest = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:{configDigest}\",\"size\":{config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:{layerDigest}\",\"size\":{layer.Length}}}]}}");
        var manifestDigest = Sha256(manifest);
        var index = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"digest\":\"sha256:{manifestDigest}\",\"size\":{manifest.Length}," +
            "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}," +
            $"\"annotations\":{{\"io.containerd.image.name\":\"{name}\",\"org.opencontainers.image.ref.name\":\"latest\"}}}}]}}");

        await using var file = File.Create(archivePath);
        using var tar = new TarWriter(file, TarEntryFormat.Ustar);
        AddFile(tar, "oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"), 0b110_100_100);
        AddFile(tar, "index.json", index, 0b110_100_100);
        AddDirectory(tar, "blobs/", 0b111_101_101);
        AddDirectory(tar, "blobs/sha256/", 0b111_101_101);
        AddFile(tar, "blobs/sha256/" + layerDigest, layer, 0b110_100_100);
        AddFile(tar, "blobs/sha256/" + configDigest, config, 0b110_100_100);
        AddFile(tar, "blobs/sha256/" + manifestDigest, manifest, 0b110_100_100);
    }

    private static byte[] BuildLayer(IEnumerable<string> applets, IReadOnlyList<string> extraBinaries)
    {
        using var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var dir in new[] { "bin/", "etc/", "root/" }) AddDirectory(tar, dir, 0b111_101_101);
            AddDirectory(tar, "tmp/", 0b1_111_111_111); // sticky, world-writable
            AddFile(tar, "etc/passwd", Encoding.UTF8.GetBytes("root:x:0:0:root:/root:/bin/sh\n"), 0b110_100_100);
            AddFile(tar, "bin/busybox", File.ReadAllBytes(BusyboxPath), 0b111_101_101);
            var extraNames = extraBinaries.Select(Path.GetFileName).ToHashSet();
            foreach (var extra in extraBinaries) AddFile(tar, "bin/" + Path.GetFileName(extra), File.ReadAllBytes(extra), 0b111_101_101);
            foreach (var applet in applets.Where(a => a != "busybox" && !extraNames.Contains(a)).Distinct())
            {
                tar.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "bin/" + applet)
                {
                    LinkName = "busybox", Mode = (UnixFileMode)0b111_111_111, ModificationTime = DateTimeOffset.UnixEpoch,
                });
            }
        }
        return ms.ToArray();
    }

    private static void AddDirectory(TarWriter tar, string name, int mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, ModificationTime = DateTimeOffset.UnixEpoch });

    private static void AddFile(TarWriter tar, string name, byte[] content, int mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)mode, ModificationTime = DateTimeOffset.UnixEpoch, DataStream = new MemoryStream(content),
        });

    public static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
