using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Oci.Tests;

/// <summary>
/// A server process of ours on 127.0.0.1 (Debian's docker-registry, or a hostile python one), stopped by its pid.
/// </summary>
public sealed class LocalServer : IDisposable
{
    private readonly Process _p;
    public int Port { get; }

    public LocalServer(string file, IReadOnlyList<string> args, int port, string log)
    {
        Port = port;
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = false, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["DK_LOG"] = log;
        _p = Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        _p.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        _p.BeginErrorReadLine();
        for (int i = 0; i < 100; i++)
        {
            try { using var c = new TcpClient(); c.Connect(IPAddress.Loopback, port); return; }
            catch (SocketException) { if (_p.HasExited) break; Thread.Sleep(100); }
        }
        Dispose();
        string said;
        lock (stderr) said = stderr.ToString();
        throw new Xunit.Sdk.XunitException($"{file} did not listen on 127.0.0.1:{port}: {(File.Exists(log) ? File.ReadAllText(log) : "")}{said}");
    }

    /// <summary>Debian's docker-registry on a free 127.0.0.1 port, its storage under <paramref name="tmp"/>.</summary>
    public static LocalServer DockerRegistry(TempDir tmp, string authYaml, string name = "registry")
    {
        int port = Ports.Free();
        var config = tmp.Sub(name + ".yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {tmp.Sub(name + "-data")}
            http:
              addr: 127.0.0.1:{port}
            {authYaml}
            """);
        return new LocalServer("docker-registry", ["serve", config], port, tmp.Sub(name + ".log"));
    }


    public void Dispose()
    {
        if (!_p.HasExited) { _p.Kill(); _p.WaitForExit(10_000); }
        _p.Dispose();
    }
}

[Collection(CliCollection.Name)]
public sealed class RegistryTests(CliBinary binary) : IDisposable
{
    private readonly TempDir _tmp = new("dk-registry-test-", onDisk: true);
    private DiffKeeperCli Cli => new(binary.Executable, _tmp.Sub("store"));

    public void Dispose() => _tmp.Dispose();

    private void Record()
    {
        var up = _tmp.Sub("upper");
        Posix.MkDir(up);
        Posix.MkDir(up + "/d");
        Posix.WriteFile(up + "/d/f", "pushed content\n"u8);
        Cli.Run("snapshot", up, "--recording", "job", "--at", "2026-11-30T10:00:00Z").ExpectOk();
    }

    private LocalServer StartRegistry() => LocalServer.DockerRegistry(_tmp, "");

    [SkippableFact]
    public void Push_then_pull_through_a_real_registry_and_skopeo_reads_the_artifact()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("docker-registry"), "needs Debian's docker-registry");
        Record();
        using var reg = StartRegistry();
        var refText = $"oci://127.0.0.1:{reg.Port}/recordings/ci:job-1";
        var push = Cli.Run("push", "job", refText, "--plain-http", "--json").ExpectOk().JsonLines().Single();
        Assert.StartsWith("sha256:", push.GetProperty("digest").GetString());
        Cli.Run("push", "job", refText, "--plain-http").ExpectOk(); // again: the blobs are there already

        var pulled = _tmp.Sub("pulled.dkpack");
        Cli.Run("pull", refText, "-o", pulled, "--plain-http").ExpectOk();
        Assert.Equal("pushed content\n", Cli.Run("show", pulled, "/d/f").ExpectOk().StdoutText);
        // oci:// wherever a recording is named (plain HTTP for a registry on this machine).
        Assert.Equal("pushed content\n", Cli.Run("show", refText, "/d/f").ExpectOk().StdoutText);
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), "diffkeeper-pull-*"));

        Cli.Run("pull", $"oci://127.0.0.1:{reg.Port}/recordings/ci:absent", "-o", _tmp.Sub("x.dkpack"), "--plain-http").ExpectExit(3);
        Assert.False(File.Exists(_tmp.Sub("x.dkpack")));

        if (Integration.HasTool("skopeo"))
        {
            var raw = Tools.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", $"docker://127.0.0.1:{reg.Port}/recordings/ci:job-1"]);
            Assert.True(raw.ExitCode == 0, raw.Describe());
            var m = JsonDocument.Parse(raw.Stdout).RootElement;
            Assert.Equal("application/vnd.diffkeeper.recording.v1", m.GetProperty("artifactType").GetString());
            Assert.Equal("job", m.GetProperty("annotations").GetProperty("io.diffkeeper.recording.name").GetString());
        }
    }

    [SkippableFact]
    public void A_second_push_sharing_90_percent_of_its_chunks_uploads_under_20_percent_of_the_bytes()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("docker-registry"), "needs Debian's docker-registry");
        // Two recordings of 400 files of 16 KiB (random: nothing compresses); the second changed 40 of them.
        var rng = new Random(11);
        var files = Enumerable.Range(0, 400).Select(_ => { var b = new byte[16384]; rng.NextBytes(b); return b; }).ToArray();
        foreach (var (name, changed) in new[] { ("first", 0), ("second", 40) })
        {
            var up = _tmp.Sub("upper-" + name);
            Posix.MkDir(up);
            for (int i = 0; i < files.Length; i++)
            {
                if (i % 10 == 3 && changed > 0) rng.NextBytes(files[i]);
                Posix.WriteFile($"{up}/f{i:D3}", files[i]);
            }
            Cli.Run("snapshot", up, "--recording", name, "--at", "2026-11-30T10:00:00Z").ExpectOk();
        }
        using var reg = StartRegistry();
        var repo = $"oci://127.0.0.1:{reg.Port}/recordings/ci";
        var first = Cli.Run("push", "first", repo + ":first", "--plain-http", "--json").ExpectOk().JsonLines().Single();
        var second = Cli.Run("push", "second", repo + ":second", "--plain-http", "--json").ExpectOk().JsonLines().Single();
        long total = second.GetProperty("bytes").GetInt64(), uploaded = second.GetProperty("uploaded_bytes").GetInt64();
        Assert.True(first.GetProperty("uploaded_bytes").GetInt64() >= 400 * 16384, first.ToString());
        Assert.True(total >= 400 * 16384 && uploaded <= total / 5, $"second push uploaded {uploaded} of {total} bytes: {second}");
        Assert.True(second.GetProperty("reused_layers").GetInt32() > 0, second.ToString());

        // Each pulls back whole: the changed files and the shared ones, and only its own chunks.
        foreach (var (name, i) in new[] { ("second", 3), ("second", 4), ("first", 3) })
        {
            var file = _tmp.Sub($"{name}-{i}.dkpack");
            Cli.Run("pull", $"{repo}:{name}", "-o", file, "--plain-http").ExpectOk();
            var want = File.ReadAllBytes($"{_tmp.Sub("upper-" + name)}/f{i:D3}");
            Assert.Equal(want, Cli.Run("show", file, $"/f{i:D3}").ExpectOk().Stdout);
        }
        var listed = Cli.Run("ls", repo, "--plain-http", "--json").ExpectOk().JsonLines();
        Assert.Equal(["first", "second"], listed.Select(l => l.GetProperty("name").GetString()).Order());
    }

    // A registry that lies: GET /v2/x/{mode}/manifests/t answers per mode; blobs are wrong, short or endless.
    private const string Hostile = """
        import hashlib, http.server, json, socket, sys
        good = b"DKPACK\r\n" + b"x" * 100
        digest = "sha256:" + hashlib.sha256(good).hexdigest()
        def manifest(size=len(good)):
            return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.diffkeeper.recording.v1",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
                "layers": [{"mediaType": "application/vnd.diffkeeper.recording.pack.v1", "digest": digest, "size": size}]}).encode()
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def send(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers: self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                parts = self.path.split("/")  # ['', 'v2', 'x', mode, 'manifests'|'blobs', ref]
                mode = parts[3]
                if mode == "unauthorized": return self.send(401, b"", [("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:1/token"')])
                if mode == "loop": return self.send(302, b"", [("Location", self.path)])
                if parts[4] == "manifests":
                    if mode == "huge":
                        self.send_response(200); self.send_header("Content-Length", str(64 << 20)); self.end_headers()
                        try:
                            for _ in range(64 << 4): self.wfile.write(b" " * 65536)
                        except Exception: pass
                        return
                    return self.send(200, manifest(), [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
                if mode == "wrongdigest": return self.send(200, b"DKPACK\r\n" + b"y" * 100)
                if mode == "truncated":
                    self.send_response(200); self.send_header("Content-Length", str(len(good))); self.end_headers()
                    self.wfile.write(good[:50]); self.wfile.flush(); self.connection.shutdown(socket.SHUT_RDWR); self.close_connection = True; return
                return self.send(200, good)
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """;

    [SkippableFact]
    public void A_hostile_registry_gives_a_clear_error_and_never_a_half_written_recording()
    {
        Integration.Require(Integration.HasTool("python3"), "needs python3");
        int port = Ports.Free();
        var script = _tmp.Sub("hostile.py");
        File.WriteAllText(script, Hostile);
        using var server = new LocalServer("python3", [script, port.ToString()], port, _tmp.Sub("hostile.log"));
        var cases = new (string Mode, int Exit, string Says)[]
        {
            ("wrongdigest", 4, "does not match its digest"),
            ("truncated", 4, "truncated"),
            ("unauthorized", 1, "401"),
            ("loop", 1, "get the manifest"),
            ("huge", 4, "over"),
        };
        foreach (var (mode, exit, says) in cases)
        {
            var file = _tmp.Sub(mode + ".dkpack");
            var r = Cli.Run("pull", $"oci://127.0.0.1:{port}/x/{mode}:t", "-o", file, "--plain-http");
            Assert.True(r.ExitCode == exit && r.Stderr.Contains(says), $"{mode}: {r.Describe()}");
            Assert.False(File.Exists(file), mode);
            Assert.False(File.Exists(file + ".partial"), mode);
        }
    }
}
