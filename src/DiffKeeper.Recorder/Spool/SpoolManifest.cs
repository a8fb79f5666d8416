using System.Globalization;
using System.Text.Json;
using DiffKeeper.Recorder.Api;

namespace DiffKeeper.Recorder.Spool;

/// <summary>A manifest.json that cannot be used; the entry is set aside as &lt;entry&gt;.bad.</summary>
internal sealed class SpoolFormatException(string message) : Exception(message);

/// <summary>One lifecycle event a shim saw and wrote into the manifest.</summary>
internal sealed record SpoolEvent(string Kind, long Time, int? Pid, string? ExecId, int? ExitStatus);

/// <summary>
/// manifest.json of a spool entry (docs/recorder.md): written last and atomically by the shim, so its presence
/// means the frozen upper tree beside it is complete. Unknown fields are ignored. Parsed with JsonDocument (no
/// reflection: the daemon is Native AOT); "container" uses protobuf JSON names (lowerCamelCase; the original
/// snake_case names are accepted too, as protobuf's JSON parsers do).
/// </summary>
internal sealed class SpoolManifest
{
    public int Version;
    public string Namespace = "";
    public string Id = "";
    public ulong? RecordingId;
    public long? CreatedAt;
    public long ExitedAt;
    public int ExitStatus;
    public string UpperDir = "";
    public string RootfsType = "";
    public string Freeze = "";
    public List<string> FreezeErrors = [];
    public ContainerInfo Container = new();
    public List<SpoolEvent> Events = [];
    /// <summary>Lifecycle events the shim dropped because the daemon did not keep up (a gap).</summary>
    public long EventsDropped;

    public static SpoolManifest Parse(ReadOnlySpan<byte> json)
    {
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e) { throw new SpoolFormatException($"manifest.json is not JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new SpoolFormatException("manifest.json is not a JSON object");
            var m = new SpoolManifest
            {
                Version = (int)(Int(root, "version") ?? throw new SpoolFormatException("manifest.json has no \"version\"")),
            };
            if (m.Version != 1) throw new SpoolFormatException($"manifest.json version {m.Version} is not supported (1 is)");
            m.Namespace = Str(root, "namespace") ?? "";
            m.Id = Str(root, "id") ?? "";
            if (m.Namespace.Length == 0 || m.Id.Length == 0) throw new SpoolFormatException("manifest.json lacks \"namespace\" or \"id\"");
            if (root.TryGetProperty("recording_id", out var rid) && rid.ValueKind != JsonValueKind.Null)
            {
                if (rid.ValueKind == JsonValueKind.String && ulong.TryParse(rid.GetString(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id) && id != 0)
                    m.RecordingId = id;
                else if (rid.ValueKind == JsonValueKind.Number && rid.TryGetUInt64(out var n) && n != 0)
                    m.RecordingId = n;
                else if (!(rid.ValueKind == JsonValueKind.String && rid.GetString() is "" or "0000000000000000"))
                    throw new SpoolFormatException($"manifest.json: recording_id {rid.GetRawText()} is not a hex recording id");
            }
            m.CreatedAt = Time(root, "created_at");
            m.ExitedAt = Time(root, "exited_at") ?? throw new SpoolFormatException("manifest.json has no \"exited_at\"");
            m.ExitStatus = (int)(Int(root, "exit_status") ?? throw new SpoolFormatException("manifest.json has no \"exit_status\""));
            m.UpperDir = Str(root, "upper_dir") ?? "";
            m.RootfsType = Str(root, "rootfs_type") ?? "";
            m.Freeze = Str(root, "freeze") ?? "";
            if (root.TryGetProperty("freeze_errors", out var fe) && fe.ValueKind == JsonValueKind.Array)
                foreach (var e in fe.EnumerateArray()) if (e.ValueKind == JsonValueKind.String) m.FreezeErrors.Add(e.GetString()!);
            m.EventsDropped = Int(root, "events_dropped") ?? 0;
            if (root.TryGetProperty("container", out var c) && c.ValueKind == JsonValueKind.Object) m.Container = ParseContainer(c);
            if (m.Container.Namespace.Length == 0) m.Container.Namespace = m.Namespace;
            if (m.Container.Id.Length == 0) m.Container.Id = m.Id;
            if (m.Container.UpperDir.Length == 0) m.Container.UpperDir = m.UpperDir;
            if (m.Container.RootfsType.Length == 0) m.Container.RootfsType = m.RootfsType;
            if (root.TryGetProperty("events", out var evs) && evs.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in evs.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Object) throw new SpoolFormatException("manifest.json: an entry of \"events\" is not an object");
                    var kind = Str(e, "kind") ?? throw new SpoolFormatException("manifest.json: an event has no \"kind\"");
                    var t = Time(e, "time") ?? throw new SpoolFormatException($"manifest.json: event \"{kind}\" has no \"time\"");
                    m.Events.Add(new SpoolEvent(kind, t, (int?)Int(e, "pid"), Str(e, "exec_id") ?? Str(e, "execId"),
                        (int?)(Int(e, "exit_status") ?? Int(e, "exitStatus"))));
                }
            }
            return m;
        }
    }

    private static ContainerInfo ParseContainer(JsonElement c)
    {
        var info = new ContainerInfo
        {
            Namespace = Str(c, "namespace") ?? "",
            Id = Str(c, "id") ?? "",
            Bundle = Str(c, "bundle") ?? "",
            Rootfs = Str(c, "rootfs") ?? "",
            UpperDir = Str(c, "upperDir", "upper_dir") ?? "",
            WorkDir = Str(c, "workDir", "work_dir") ?? "",
            RootfsType = Str(c, "rootfsType", "rootfs_type") ?? "",
            InitPid = (int)(Int(c, "initPid", "init_pid") ?? 0),
            MountNamespace = (ulong)(Int(c, "mountNamespace", "mount_namespace") ?? 0),
            CgroupPath = Str(c, "cgroupPath", "cgroup_path") ?? "",
            ShimPid = (int)(Int(c, "shimPid", "shim_pid") ?? 0),
            ContainerdAddress = Str(c, "containerdAddress", "containerd_address") ?? "",
        };
        if (Prop(c, "lowerDirs", "lower_dirs") is { ValueKind: JsonValueKind.Array } lowers)
            foreach (var l in lowers.EnumerateArray()) if (l.ValueKind == JsonValueKind.String) info.LowerDirs.Add(l.GetString());
        if (Prop(c, "annotations") is { ValueKind: JsonValueKind.Object } ann)
            foreach (var p in ann.EnumerateObject()) if (p.Value.ValueKind == JsonValueKind.String) info.Annotations[p.Name] = p.Value.GetString();
        if (Prop(c, "process") is { ValueKind: JsonValueKind.Object } proc)
        {
            var p = new OciProcess
            {
                Cwd = Str(proc, "cwd") ?? "",
                Uid = (uint)(Int(proc, "uid") ?? 0),
                Gid = (uint)(Int(proc, "gid") ?? 0),
                Terminal = Prop(proc, "terminal") is { ValueKind: JsonValueKind.True },
            };
            if (Prop(proc, "args") is { ValueKind: JsonValueKind.Array } args)
                foreach (var a in args.EnumerateArray()) if (a.ValueKind == JsonValueKind.String) p.Args.Add(a.GetString());
            if (Prop(proc, "envNames", "env_names") is { ValueKind: JsonValueKind.Array } env)
                foreach (var a in env.EnumerateArray()) if (a.ValueKind == JsonValueKind.String) p.EnvNames.Add(a.GetString());
            info.Process = p;
        }
        return info;
    }

    private static JsonElement? Prop(JsonElement e, params string[] names)
    {
        foreach (var n in names) if (e.TryGetProperty(n, out var v) && v.ValueKind != JsonValueKind.Null) return v;
        return null;
    }

    private static string? Str(JsonElement e, params string[] names)
    {
        if (Prop(e, names) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.String) throw new SpoolFormatException($"manifest.json: \"{names[0]}\" is not a string");
        return v.GetString();
    }

    /// <summary>An integer, also as a string (protobuf JSON writes 64-bit integers as strings).</summary>
    private static long? Int(JsonElement e, params string[] names)
    {
        if (Prop(e, names) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n)) return n;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out var u)) return unchecked((long)u);
        if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out n)) return n;
        if (v.ValueKind == JsonValueKind.String && ulong.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out u)) return unchecked((long)u);
        throw new SpoolFormatException($"manifest.json: \"{names[0]}\" is not an integer");
    }

    private static long? Time(JsonElement e, string name)
    {
        if (Prop(e, name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String && Rfc3339.TryParse(v.GetString()!, out var ns)) return ns;
        throw new SpoolFormatException($"manifest.json: \"{name}\" is not an RFC 3339 time: {v.GetRawText()}");
    }
}

/// <summary>RFC 3339 with up to nanosecond fractions (DateTimeOffset alone keeps only 100 ns).</summary>
internal static class Rfc3339
{
    public static bool TryParse(string s, out long ns)
    {
        ns = 0;
        // Split the fraction off so DateTimeOffset parses the rest and the fraction keeps all 9 digits.
        int dot = s.IndexOf('.');
        long frac = 0;
        string rest = s;
        if (dot > 0)
        {
            int end = dot + 1;
            while (end < s.Length && char.IsAsciiDigit(s[end])) end++;
            var digits = s[(dot + 1)..end];
            if (digits.Length == 0 || digits.Length > 9) return false;
            frac = long.Parse(digits.PadRight(9, '0'), CultureInfo.InvariantCulture);
            rest = s[..dot] + s[end..];
        }
        if (!DateTimeOffset.TryParseExact(rest, ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss'Z'"], CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return false;
        ns = (t.UtcTicks - DateTime.UnixEpoch.Ticks) * 100 + frac;
        return true;
    }
}
