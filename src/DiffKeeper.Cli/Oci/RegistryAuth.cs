using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DiffKeeper.Cli.Oci;

/// <summary>A user name and password for a registry, and where they came from (for error messages).</summary>
public sealed record RegistryCredentials(string User, string Password, string Source);

/// <summary>
/// Credentials the way docker, podman, skopeo and oras read them: $DOCKER_CONFIG/config.json (default
/// ~/.docker/config.json), `auths.&lt;host&gt;.auth` = base64(user:password), or `username`/`password` beside it.
/// Credential helpers (`credsStore`, `credHelpers`) are not run.
/// </summary>
public static class DockerConfig
{
    public static string File()
    {
        var dir = Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } d ? d
            : Path.Combine(Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
        return Path.Combine(dir, "config.json");
    }

    public static RegistryCredentials? Lookup(string host)
    {
        var file = File();
        if (!System.IO.File.Exists(file)) return null;
        JsonObject? auths;
        try { auths = (JsonNode.Parse(System.IO.File.ReadAllText(file)) as JsonObject)?["auths"] as JsonObject; }
        catch (JsonException e) { throw new IOException($"{file} is not valid JSON ({e.Message})"); }
        if (auths is null) return null;
        // Keys are a host, or an URL naming it (docker login writes "https://index.docker.io/v1/" for the Hub).
        foreach (var (key, value) in auths)
        {
            var k = key;
            if (k.Contains("://", StringComparison.Ordinal)) k = k[(k.IndexOf("://", StringComparison.Ordinal) + 3)..];
            k = k.Split('/')[0];
            if (!string.Equals(k, host, StringComparison.OrdinalIgnoreCase) || value is not JsonObject entry) continue;
            if ((string?)entry["auth"] is { Length: > 0 } auth)
            {
                string text;
                try { text = Encoding.UTF8.GetString(Convert.FromBase64String(auth)); }
                catch (FormatException) { throw new IOException($"{file}: auths.{key}.auth is not base64"); }
                int colon = text.IndexOf(':');
                if (colon < 0) throw new IOException($"{file}: auths.{key}.auth is not base64 of user:password");
                return new RegistryCredentials(text[..colon], text[(colon + 1)..], file);
            }
            if ((string?)entry["username"] is { } u && (string?)entry["password"] is { } p) return new RegistryCredentials(u, p, file);
        }
        return null;
    }
}

/// <summary>
/// Answers a registry's 401 as the distribution spec's clients do: its WWW-Authenticate challenge says Basic (send
/// the credentials) or Bearer realm=…,service=…,scope=… (get a token from the realm — with the credentials as
/// Basic when there are any, anonymously otherwise — and send it). The header is then kept for later requests.
/// </summary>
public sealed class RegistryAuth(HttpClient http, string host, string repository, bool push)
{
    private RegistryCredentials? _creds;
    private bool _credsLoaded;

    public AuthenticationHeaderValue? Header { get; private set; }

    private RegistryCredentials? Creds
    {
        get
        {
            if (!_credsLoaded) { _creds = DockerConfig.Lookup(host); _credsLoaded = true; }
            return _creds;
        }
    }

    /// <summary>
    /// Sets <see cref="Header"/> from a 401 response; returns an error message when the challenge cannot be answered.
    /// </summary>
    public string? Answer(HttpResponseMessage unauthorized)
    {
        var challenge = unauthorized.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            ?? unauthorized.Headers.WwwAuthenticate.FirstOrDefault(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase));
        if (challenge is null) return "the registry sent no Basic or Bearer challenge";
        var creds = Creds;
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (creds is null) return $"the registry wants a user name and password: none for {host} in {DockerConfig.File()}";
            if (Header?.Scheme == "Basic") return $"the registry refused the user {creds.User} from {creds.Source}";
            Header = BasicHeader(creds);
            return null;
        }
        var p = Params(challenge.Parameter ?? "");
        if (!p.TryGetValue("realm", out var realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) || realmUri.Scheme is not ("http" or "https"))
            return "the registry's Bearer challenge has no usable realm";
        var scopes = new List<string>();
        if (p.TryGetValue("scope", out var s)) scopes.AddRange(s.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var ours = $"repository:{repository}:{(push ? "pull,push" : "pull")}";
        if (!scopes.Contains(ours)) scopes.Add(ours);
        if (Header?.Scheme == "Bearer" && _tokenScopes.SetEquals(scopes))
            return creds is null ? $"the token is not enough and there are no credentials for {host} in {DockerConfig.File()}"
                : $"the registry refused the token the user {creds.User} from {creds.Source} got";
        var query = new StringBuilder();
        if (p.TryGetValue("service", out var service)) query.Append("service=").Append(Uri.EscapeDataString(service));
        foreach (var sc in scopes) query.Append(query.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(sc));
        var url = new UriBuilder(realmUri) { Query = (realmUri.Query.TrimStart('?') is { Length: > 0 } q ? q + "&" : "") + query }.Uri;
        var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (creds is not null) req.Headers.Authorization = BasicHeader(creds);
        HttpResponseMessage r;
        try { r = http.Send(req); }
        catch (HttpRequestException e) { return $"the token server {realmUri.GetLeftPart(UriPartial.Path)} failed: {e.Message}"; }
        catch (TaskCanceledException) { return $"the token server {realmUri.GetLeftPart(UriPartial.Path)} timed out"; }
        using (r)
        {
            if (r.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                return creds is null ? $"the token server refused an anonymous token ({(int)r.StatusCode}) and there are no credentials for {host} in {DockerConfig.File()}"
                    : $"the token server refused the user {creds.User} from {creds.Source} ({(int)r.StatusCode})";
            if (!r.IsSuccessStatusCode) return $"the token server answered {(int)r.StatusCode} {r.ReasonPhrase}";
            if (r.Content.Headers.ContentLength > 1 << 20) return "the token server's answer is over 1 MiB";
            string? token;
            try
            {
                var body = JsonNode.Parse(r.Content.ReadAsStream()) as JsonObject;
                token = (string?)body?["token"] ?? (string?)body?["access_token"];
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException) { return $"the token server's answer is not JSON with a token ({e.Message})"; }
            if (string.IsNullOrEmpty(token)) return "the token server's answer has no token";
            Header = new AuthenticationHeaderValue("Bearer", token);
            _tokenScopes = [.. scopes];
            return null;
        }
    }

    private HashSet<string> _tokenScopes = [];

    private static AuthenticationHeaderValue BasicHeader(RegistryCredentials c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(c.User + ":" + c.Password)));

    /// <summary>The auth-params of a challenge: key=value or key="quoted value", comma separated.</summary>
    public static Dictionary<string, string> Params(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i]))) i++;
            int eq = text.IndexOf('=', i);
            if (eq < 0) break;
            var key = text[i..eq].Trim();
            i = eq + 1;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                for (i++; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\' && i + 1 < text.Length) i++;
                    value.Append(text[i]);
                }
                i++;
            }
            else
                for (; i < text.Length && text[i] != ','; i++) value.Append(text[i]);
            d[key] = value.ToString().Trim();
        }
        return d;
    }
}
