using System.Text.Json;

namespace DiffKeeper.Shim.Service;

/// <summary>The few facts the shim needs from a bundle's OCI <c>config.json</c>.</summary>
internal sealed class OciSpec
{
    public Dictionary<string, string> Annotations { get; } = new();

    /// <summary>True when the container gets a pid namespace of its own (a "pid" entry without a path).</summary>
    public bool HasOwnPidNamespace { get; private set; }

    public static OciSpec Load(string bundle)
    {
        var spec = new OciSpec();
        var path = Path.Combine(bundle, "config.json");
        if (!File.Exists(path)) return spec;
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        if (root.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object)
            foreach (var p in annotations.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.String) spec.Annotations[p.Name] = p.Value.GetString()!;
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
}
