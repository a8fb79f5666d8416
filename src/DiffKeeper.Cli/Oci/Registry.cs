using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using DiffKeeper.Store;

namespace DiffKeeper.Cli.Oci;

/// <summary>A reference oci://HOST[:PORT]/REPO[:TAG|@DIGEST].</summary>
public sealed partial record OciRef(string Host, string Repository, string Reference)
{
    [GeneratedRegex(@"^oci://([A-Za-z0-9.\-]+(?::[0-9]+)?)/([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})|@(sha256:[0-9a-f]{64}))?$")]
    private static partial Regex Re();

    public static bool Is(string s) => s.StartsWith("oci://", StringComparison.Ordinal);

    public static OciRef Parse(string s)
    {
        var m = Re().Match(s);
        if (!m.Success) throw new UsageException($"not a registry reference: {s} (oci://HOST[:PORT]/REPO[:TAG])");
        return new OciRef(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Success ? m.Groups[3].Value : m.Groups[4].Success ? m.Groups[4].Value : "latest");
    }

    public override string ToString() => $"oci://{Host}/{Repository}{(Reference.StartsWith("sha256:", StringComparison.Ordinal) ? "@" : ":")}{Reference}";
}

/// <summary>
/// The few calls of the OCI distribution API a recording artifact needs: blob HEAD/upload/GET, manifest PUT/GET.
/// Anonymous, Basic or Bearer (see <see cref="RegistryAuth"/>). Everything read from the registry is bounded and
/// verified (size, digest).
/// </summary>
public sealed class Registry : IDisposable
{
    public const string ArtifactType = "application/vnd.diffkeeper.recording.v1";
    public const string PackMediaType = "application/vnd.diffkeeper.recording.pack.v1";
    public const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string EmptyMediaType = "application/vnd.oci.empty.v1+json";
    private const int MaxManifest = 4 << 20;

    private readonly HttpClient _http;
    private readonly string _base;
    private readonly OciRef _ref;
    private readonly RegistryAuth _auth;

    /// <summary>Bytes of blobs uploaded, and blobs found on the registry already (not uploaded).</summary>
    public long UploadedBytes { get; private set; }
    public long SkippedBytes { get; private set; }

    public Registry(OciRef r, bool plainHttp, bool push = false)
    {
        _ref = r;
        _base = $"{(plainHttp ? "http" : "https")}://{r.Host}/v2/{r.Repository}";
        // A redirect loop ends after a few hops with an error, not a hang; Authorization is not sent on a redirect.
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 5 }) { Timeout = TimeSpan.FromMinutes(10) };
        _auth = new RegistryAuth(_http, r.Host, r.Repository, push);
    }

    private Exception Fail(string what, HttpResponseMessage r) => r.StatusCode switch
    {
        HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new IOException($"{_ref}: {what}: {(int)r.StatusCode} {r.ReasonPhrase} (not allowed)"),
        HttpStatusCode.NotFound => new NotFoundException($"{_ref}: {what}: not found"),
        _ => new IOException($"{_ref}: {what}: {(int)r.StatusCode} {r.ReasonPhrase}"),
    };

    /// <summary>
    /// Sends a request made by <paramref name="make"/> (made again when a 401 is answered with credentials or a
    /// token); a 401 that cannot be answered is an error saying why.
    /// </summary>
    private HttpResponseMessage Send(Func<HttpRequestMessage> make, string what)
    {
        for (int attempt = 0; ; attempt++)
        {
            var req = make();
            if (_auth.Header is { } h) req.Headers.Authorization = h;
            HttpResponseMessage r;
            try { r = _http.Send(req, HttpCompletionOption.ResponseHeadersRead); }
            catch (HttpRequestException e) { throw new IOException($"{_ref}: {what}: {e.Message}"); }
            catch (TaskCanceledException) { throw new IOException($"{_ref}: {what}: timed out"); }
            finally { req.Content?.Dispose(); } // sent (or failed): a body stream opened by make() is closed
            if (r.StatusCode != HttpStatusCode.Unauthorized) return r;
            using (r)
            {
                var problem = attempt < 3 ? _auth.Answer(r) : "the registry keeps asking";
                if (problem is not null) throw new IOException($"{_ref}: {what}: 401 Unauthorized: {problem}");
            }
        }
    }

    public bool HasBlob(string digest)
    {
        using var r = Send(() => new HttpRequestMessage(HttpMethod.Head, $"{_base}/blobs/{digest}"), "check a blob");
        if (r.StatusCode == HttpStatusCode.NotFound) return false;
        if (!r.IsSuccessStatusCode) throw Fail("check a blob", r);
        return true;
    }

    /// <summary>Monolithic upload: POST for a session, PUT the bytes with the digest (skipped when present).</summary>
    public void PushBlob(string digest, long size, Func<Stream> open)
    {
        if (HasBlob(digest)) { SkippedBytes += size; return; }
        string location;
        using (var r = Send(() => new HttpRequestMessage(HttpMethod.Post, $"{_base}/blobs/uploads/"), "start an upload"))
        {
            if (r.StatusCode != HttpStatusCode.Accepted || r.Headers.Location is null) throw Fail("start an upload", r);
            location = new Uri(new Uri(_base), r.Headers.Location).ToString();
        }
        var put = location + (location.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest);
        using var r2 = Send(() =>
        {
            var content = new StreamContent(open());
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.ContentLength = size;
            return new HttpRequestMessage(HttpMethod.Put, put) { Content = content };
        }, "upload a blob");
        if (r2.StatusCode != HttpStatusCode.Created) throw Fail("upload a blob", r2);
        UploadedBytes += size;
    }

    public string PutManifest(byte[] manifest)
    {
        using var r = Send(() =>
        {
            var content = new ByteArrayContent(manifest);
            content.Headers.ContentType = new MediaTypeHeaderValue(ManifestMediaType);
            return new HttpRequestMessage(HttpMethod.Put, $"{_base}/manifests/{_ref.Reference}") { Content = content };
        }, "put the manifest");
        if (r.StatusCode != HttpStatusCode.Created) throw Fail("put the manifest", r);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(manifest));
    }

    public byte[] GetManifest(string? reference = null)
    {
        reference ??= _ref.Reference;
        using var r = Send(() =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, $"{_base}/manifests/{reference}");
            req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(ManifestMediaType));
            return req;
        }, "get the manifest");
        if (!r.IsSuccessStatusCode) throw Fail("get the manifest", r);
        var bytes = ReadSmall(r, "the manifest");
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)) != reference)
            throw new CorruptDataException($"{_ref}: the manifest does not match its digest");
        return bytes;
    }

    /// <summary>The repository's tags (GET /v2/REPO/tags/list, following the Link header's pages).</summary>
    public List<string> Tags()
    {
        var tags = new List<string>();
        var url = $"{_base}/tags/list?n=1000";
        for (int page = 0; page < 1000 && url is not null; page++)
        {
            var u = url;
            using var r = Send(() => new HttpRequestMessage(HttpMethod.Get, u), "list the tags");
            if (r.StatusCode == HttpStatusCode.NotFound) return tags;
            if (!r.IsSuccessStatusCode) throw Fail("list the tags", r);
            try
            {
                var doc = System.Text.Json.Nodes.JsonNode.Parse(ReadSmall(r, "the tag list"));
                foreach (var t in doc?["tags"] as System.Text.Json.Nodes.JsonArray ?? []) if ((string?)t is { } s) tags.Add(s);
            }
            catch (System.Text.Json.JsonException e) { throw new CorruptDataException($"{_ref}: the tag list is not valid JSON ({e.Message})"); }
            url = null;
            // Link: </v2/REPO/tags/list?last=x&n=1000>; rel="next"
            if (r.Headers.TryGetValues("Link", out var links) && links.FirstOrDefault() is { } link && link.Contains("rel=\"next\"", StringComparison.Ordinal)
                && link.IndexOf('<') is >= 0 and var lt && link.IndexOf('>', lt) is > 0 and var gt)
                url = new Uri(new Uri(_base), link[(lt + 1)..gt]).ToString();
        }
        return tags;
    }

    private byte[] ReadSmall(HttpResponseMessage r, string what)
    {
        if (r.Content.Headers.ContentLength > MaxManifest) throw new CorruptDataException($"{_ref}: {what} is {r.Content.Headers.ContentLength} bytes, over {MaxManifest}");
        using var s = r.Content.ReadAsStream();
        var ms = new MemoryStream();
        var buf = new byte[81920];
        int n;
        while ((n = Read(s, buf)) > 0)
        {
            ms.Write(buf, 0, n);
            if (ms.Length > MaxManifest) throw new CorruptDataException($"{_ref}: {what} is over {MaxManifest} bytes");
        }
        return ms.ToArray();
    }

    /// <summary>Streams a blob into <paramref name="output"/>, failing on a short, long or wrong blob.</summary>
    public void GetBlob(string digest, long size, Stream output)
    {
        using var r = Send(() => new HttpRequestMessage(HttpMethod.Get, $"{_base}/blobs/{digest}"), "get a blob");
        if (!r.IsSuccessStatusCode) throw Fail("get a blob", r);
        using var s = r.Content.ReadAsStream();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 20];
        long total = 0;
        int n;
        try
        {
            while ((n = Read(s, buf)) > 0)
            {
                total += n;
                if (total > size) throw new CorruptDataException($"{_ref}: blob {digest} is longer than its {size} bytes");
                hash.AppendData(buf, 0, n);
                output.Write(buf, 0, n);
            }
        }
        catch (IOException e) { throw new CorruptDataException($"{_ref}: blob {digest} broke off after {total} of {size} bytes ({e.Message})"); }
        if (total != size) throw new CorruptDataException($"{_ref}: blob {digest} is truncated: {total} of {size} bytes");
        var got = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        if (got != digest) throw new CorruptDataException($"{_ref}: blob {digest} does not match its digest (content is {got})");
    }

    /// <summary>
    /// A read that gives up after a minute without data: HttpClient's timeout ends at the headers when the body is
    /// streamed, and a registry that stalls mid-body must not hang us.
    /// </summary>
    private int Read(Stream s, byte[] buf)
    {
        using var cts = new CancellationTokenSource(StallTimeout);
        try { return s.ReadAsync(buf, cts.Token).AsTask().GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { throw new IOException($"no data for {StallTimeout.TotalSeconds:0} s"); }
    }

    private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(60);

    public void Dispose() => _http.Dispose();
}
