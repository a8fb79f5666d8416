using System.Text.Json;

namespace DiffKeeper.Shim.Service;

/// <summary>The few facts the shim needs from a bundle's OCI <c>config.json</c>.</summary>
public sealed class OciSpec
{
    public Dictionary<string, string> Annotations { get; } = new();

    /// <summary>True when the container gets a pid namespace of its own (a "pid" entry without a path).</summary>
    public bool HasOwnPidNamespace { get; private set; }

    /// <summary>The OCI process, for the recorder (what ran). Environment values are never kept: they may hold secrets.</summary>
    public List<string> Args { get; } = new();
    public List<string> EnvNames { get; } = new();
    public string Cwd { get; private set; } = "";
    public uint Uid { get; private set; }
    public uint Gid { get; private set; }
    public bool Terminal { get; private set; }

    public static OciSpec Load(string bundle)
    {
        var spec = new OciSpec();
        var path = new BundlePaths(bundle).Config;
        if (!File.Exists(path)) return spec;
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        if (root.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object)
            foreach (var p in annotations.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.String) spec.Annotations[p.Name] = p.Value.GetString()!;
        if (root.TryGetProperty("process", out var process) && process.ValueKind == JsonValueKind.Object)
            spec.ReadProcess(process);
        if (root.TryGetProperty("linux", out var linux) && linux.TryGetProperty("namespaces", out var namespaces) &&
            namespaces.ValueKind == JsonValueKind.Array)
        {
            foreach (var ns in namespaces.EnumerateArray())
            {
                if (!ns.TryGetProperty("type", out var type) || type.GetString() != "pid") continue;
                bool hasPath = ns.TryGetProperty("path", out var p) && !string.IsNullOrEmpty(p.GetString());
                spec.HasOwnPidNamespace = !hasPath;
            }
        }
        return spec;
    }

    private void ReadProcess(JsonElement process)
    {
        if (process.TryGetProperty("args", out var args) && args.ValueKind == JsonValueKind.Array)
            foreach (var a in args.EnumerateArray())
                if (a.ValueKind == JsonValueKind.String) Args.Add(a.GetString()!);
        if (process.TryGetProperty("env", out var env) && env.ValueKind == JsonValueKind.Array)
            foreach (var e in env.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) continue;
                var entry = e.GetString()!;
                int eq = entry.IndexOf('=');
                EnvNames.Add(eq < 0 ? entry : entry[..eq]);
            }
        if (process.TryGetProperty("cwd", out var cwd) && cwd.ValueKind == JsonValueKind.String) Cwd = cwd.GetString()!;
        if (process.TryGetProperty("terminal", out var terminal) && terminal.ValueKind is JsonValueKind.True or JsonValueKind.False)
            Terminal = terminal.GetBoolean();
        if (process.TryGetProperty("user", out var user) && user.ValueKind == JsonValueKind.Object)
        {
            if (user.TryGetProperty("uid", out var uid) && uid.TryGetUInt32(out var u)) Uid = u;
            if (user.TryGetProperty("gid", out var gid) && gid.TryGetUInt32(out var g)) Gid = g;
        }
    }
}
