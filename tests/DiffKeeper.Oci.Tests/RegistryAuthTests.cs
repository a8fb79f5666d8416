using System.Text;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Oci.Tests;

/// <summary>
/// Registry auth against docker-registry itself: htpasswd (Basic) and `auth: token` (Bearer, with a token server
/// that signs JWTs the way the registry's token auth checks them: RS256, x5c chain in rootcertbundle). The
/// credentials come from a docker config.json named by DOCKER_CONFIG, as docker, skopeo and oras read it.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class RegistryAuthTests(CliBinary binary) : IDisposable
{
    private readonly TempDir _tmp = new("dk-registry-auth-test-", onDisk: true);
    private DiffKeeperCli Cli => new(binary.Executable, _tmp.Sub("store"));

    public void Dispose() => _tmp.Dispose();

    private void Record()
    {
        var up = _tmp.Sub("upper");
        Posix.MkDir(up);
        Posix.WriteFile(up + "/f", "behind a login\n"u8);
        Cli.Run("snapshot", up, "--recording", "job", "--at", "2026-11-30T10:00:00Z").ExpectOk();
    }

    /// <summary>A DOCKER_CONFIG directory whose config.json has `auths.HOST.auth` = base64(user:password).</summary>
    private Dictionary<string, string> DockerConfig(string name, string host, string? user, string? password)
    {
        var dir = _tmp.Sub(name);
        Directory.CreateDirectory(dir);
        var auths = user is null ? "{}" : $"{{\"{host}\":{{\"auth\":\"{Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password))}\"}}}}";
        File.WriteAllText(Path.Combine(dir, "config.json"), $"{{\"auths\":{auths}}}");
        return new() { ["DOCKER_CONFIG"] = dir, ["HOME"] = _tmp.Path };
    }

    private CliResult Run(Dictionary<string, string> env, params string[] args) => Cli.RunRaw(["--store", Cli.Store, .. args], env);

    /// <summary>Pushes with the right, no and wrong credentials; pulls back; lists.</summary>
    private void PushPullWithLogin(LocalServer reg, string user, string password)
    {
        Record();
        var host = $"127.0.0.1:{reg.Port}";
        var refText = $"oci://{host}/private/rec:job";
        var good = DockerConfig("good", host, user, password);
        var none = DockerConfig("none", host, null, null);
        var wrong = DockerConfig("wrong", host, user, password + "-not");

        var anon = Run(none, "push", "job", refText, "--plain-http");
        Assert.True(anon.ExitCode == 1 && anon.Stderr.Contains("401") && anon.Stderr.Contains("config.json"), anon.Describe());
        var bad = Run(wrong, "push", "job", refText, "--plain-http");
        Assert.True(bad.ExitCode == 1 && bad.Stderr.Contains("401") && bad.Stderr.Contains($"user {user}"), bad.Describe());

        Run(good, "push", "job", refText, "--plain-http").ExpectOk();
        var file = _tmp.Sub("pulled.dkpack");
        var denied = Run(wrong, "pull", refText, "-o", file, "--plain-http");
        Assert.True(denied.ExitCode == 1 && denied.Stderr.Contains("401"), denied.Describe());
        Assert.False(File.Exists(file));
        Run(good, "pull", refText, "-o", file, "--plain-http").ExpectOk();
        Assert.Equal("behind a login\n", Cli.Run("show", file, "/f").ExpectOk().StdoutText);
        Assert.Contains("job", Run(good, "ls", $"oci://{host}/private/rec", "--plain-http").ExpectOk().StdoutText);
    }

    [SkippableFact]
    public void Basic_auth_with_docker_registry_htpasswd()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("docker-registry"), "needs Debian's docker-registry");
        Integration.Require(Integration.HasTool("htpasswd"), "needs htpasswd (apache2-utils)");
        var htpasswd = _tmp.Sub("htpasswd");
        var made = Tools.Run("htpasswd", ["-Bbc", htpasswd, "alice", "s3cret pass"]); // docker-registry accepts bcrypt only
        Assert.True(made.ExitCode == 0, made.Describe());
        using var reg = LocalServer.DockerRegistry(_tmp, $"""
            auth:
              htpasswd:
                realm: dk-test
                path: {htpasswd}
            """);
        PushPullWithLogin(reg, "alice", "s3cret pass");
    }

    // Issues JWTs for docker-registry's `auth: token`: a self-signed RSA certificate (the registry's rootcertbundle)
    // signs RS256 tokens carrying it in x5c; Basic credentials alice/token-pass get what the scope asks for.
    private const string TokenServer = """
        import base64, datetime, http.server, json, sys, time, uuid
        from urllib.parse import urlparse, parse_qs
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa, padding
        port, certfile = int(sys.argv[1]), sys.argv[2]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dk-token-test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        open(certfile, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_GET(self):
                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                if auth != "Basic " + base64.b64encode(b"alice:token-pass").decode():
                    self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
                access = []
                for s in q.get("scope", []):
                    t, n, acts = s.split(":")
                    access.append({"type": t, "name": n, "actions": acts.split(",")})
                t = int(time.time())
                claims = {"iss": "dk-token-issuer", "sub": "alice", "aud": q.get("service", [""])[0], "exp": t + 300,
                          "nbf": t - 10, "iat": t, "jti": str(uuid.uuid4()), "access": access}
                head = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
                signing = (b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())).encode()
                sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
                body = json.dumps({"token": signing.decode() + "." + b64(sig), "expires_in": 300}).encode()
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
        """;

    [SkippableFact]
    public void Bearer_tokens_from_the_registry_challenge()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("docker-registry"), "needs Debian's docker-registry");
        // The python3 on PATH, else Debian's (where python3-cryptography installs).
        var python = new[] { "python3", "/usr/bin/python3" }.FirstOrDefault(p =>
            (p.StartsWith('/') ? File.Exists(p) : Integration.HasTool(p)) && Tools.Run(p, ["-c", "import cryptography"]).ExitCode == 0);
        Integration.Require(python is not null, "needs python3-cryptography");
        var script = _tmp.Sub("dk_token_server.py");
        File.WriteAllText(script, TokenServer);
        var cert = _tmp.Sub("token-cert.pem");
        int tokenPort = Ports.Free();
        using var tokens = new LocalServer(python!, [script, tokenPort.ToString(), cert], tokenPort, _tmp.Sub("token.log"));
        using var reg = LocalServer.DockerRegistry(_tmp, $"""
            auth:
              token:
                realm: http://127.0.0.1:{tokenPort}/token
                service: dk-registry
                issuer: dk-token-issuer
                rootcertbundle: {cert}
            """);
        PushPullWithLogin(reg, "alice", "token-pass");
    }
}
