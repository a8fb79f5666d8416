using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using DiffKeeper.Cli.Tests.Harness;

namespace DiffKeeper.Oci.Tests;

public sealed record ToolResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    public string Describe() => $"`{CommandLine}` exited {ExitCode}\nstdout: {Tail(Stdout)}\nstderr: {Tail(Stderr)}";
    private static string Tail(string s) => s.Length <= 3000 ? s : "…" + s[^3000..];
}

public static class Tools
{
    public static ToolResult Run(string file, IReadOnlyList<string> args, string? cwd = null, IDictionary<string, string>? env = null, int timeoutSeconds = 180)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        if (cwd is not null) psi.WorkingDirectory = cwd;
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        var line = file + " " + string.Join(' ', args);
        if (!p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            // Kill the process group's leader only by pid; the script's EXIT trap is what stops containerd.
            p.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{line}: no exit within {timeoutSeconds} s (killed)");
        }
        return new ToolResult(line, p.ExitCode, o.Result, e.Result);
    }

    /// <summary>
    /// Runs <paramref name="body"/> (bash) beside a private containerd started under <paramref name="dir"/>
    /// (scripts/lib/private-containerd.sh: own root, state, socket; never the system one): `dkctr`, $DK_SOCK and $DK_NS
    /// name it, $1… are <paramref name="args"/>. The EXIT trap stops containerd by pid, unmounts and removes the
    /// directory whatever happened.
    /// </summary>
    public static ToolResult WithPrivateContainerd(string dir, string body, IReadOnlyList<string> args, IDictionary<string, string>? env = null)
    {
        const string preamble = """
            set -e
            source "$DK_REPO/scripts/lib/private-containerd.sh"
            trap dk_containerd_stop EXIT
            dk_containerd_start "$1" >&2
            shift

            """;
        var all = new Dictionary<string, string> { ["DK_REPO"] = Binaries.RequireRepoRoot(), ["DK_NS"] = "dk-oci-test" };
        if (env is not null) foreach (var (k, v) in env) all[k] = v;
        return Run("bash", ["-c", preamble + body, "bash", dir, .. args], env: all, timeoutSeconds: 240);
    }

    /// <summary>Imports <paramref name="archive"/> into a private containerd and runs <paramref name="image"/>.</summary>
    public static ToolResult ImportAndRun(string dir, string archive, string image, IReadOnlyList<string> command) =>
        WithPrivateContainerd(dir, """
            dkctr image import "$1" >&2
            img=$2; shift 2
            dkctr run --rm "$img" dk-oci-test "$@"
            """, [archive, image, .. command]);
}

/// <summary>
/// A small OCI image archive built from Debian's busybox-static (no registry in CI), with a few files of its own
/// that the tests delete, hide under an opaque directory, or leave alone.
/// </summary>
public static class BusyboxArchive
{
    public const string Busybox = "/bin/busybox";

    public static (string LayerDigest, string Archive) Write(string path)
    {
        var applets = Tools.Run(Busybox, ["--list"]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var d in new[] { "bin/", "etc/", "opt/", "opt/keep/", "opt/other/", "root/", "data/" }) Dir(tar, d, 0b111_101_101);
            Dir(tar, "tmp/", 0b1_111_111_111);
            File_(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"u8.ToArray(), 0b110_100_100);
            File_(tar, "etc/gone", "deleted by the container\n"u8.ToArray(), 0b110_100_100);
            File_(tar, "opt/keep/k", "hidden by an opaque directory\n"u8.ToArray(), 0b110_100_100);
            File_(tar, "opt/other/o", "untouched\n"u8.ToArray(), 0b110_100_100);
            File_(tar, "bin/busybox", File.ReadAllBytes(Busybox), 0b111_101_101);
            foreach (var a in applets.Where(a => a != "busybox").Distinct())
                tar.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "bin/" + a) { LinkName = "busybox", Mode = (UnixFileMode)0b111_111_111, ModificationTime = DateTimeOffset.UnixEpoch });
        }
        var layer = ms.ToArray();
        var ld = Sha(layer);
        var config = Encoding.UTF8.GetBytes(
            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"]}," +
            $"\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{ld}\"]}},\"history\":[{{\"created_by\":\"busybox-static\"}}]}}");
        var cd = Sha(config);
        var manifest = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:{cd}\",\"size\":{config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:{ld}\",\"size\":{layer.Length}}}]}}");
        var md = Sha(manifest);
        var index = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:{md}\",\"size\":{manifest.Length}," +
            "\"annotations\":{\"org.opencontainers.image.ref.name\":\"localhost/dk-base:1\"}}]}");
        WriteArchive(path, index, [(ld, layer), (cd, config), (md, manifest)]);
        return ("sha256:" + ld, path);
    }

    public static void WriteArchive(string path, byte[] index, IEnumerable<(string Hex, byte[] Data)> blobs)
    {
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Ustar);
        File_(tar, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray(), 0b110_100_100);
        File_(tar, "index.json", index, 0b110_100_100);
        Dir(tar, "blobs/", 0b111_101_101);
        Dir(tar, "blobs/sha256/", 0b111_101_101);
        foreach (var (hex, data) in blobs) File_(tar, "blobs/sha256/" + hex, data, 0b110_100_100);
    }

    public static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static void Dir(TarWriter tar, string name, int mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, ModificationTime = DateTimeOffset.UnixEpoch });

    private static void File_(TarWriter tar, string name, byte[] content, int mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, ModificationTime = DateTimeOffset.UnixEpoch, DataStream = new MemoryStream(content) });
}
