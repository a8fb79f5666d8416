using System.Text.Json;

namespace DiffKeeper.Shim.IntegrationTests.Recording;

/// <summary>One line of the shim's diagnostic hook log (see src/DiffKeeper.Shim/Recording/HookLogRecorderHook.cs).</summary>
public sealed record HookLogEntry(
    int Line,
    string Hook,
    DateTime Time,
    int ShimPid,
    string Id,
    int? ExitStatus,
    bool RootfsMounted,
    string? UpperDir,
    bool? UpperDirExists,
    IReadOnlyList<string> UpperDirEntries,
    string Raw)
{
    public const string Created = "created";
    public const string ExitedBeforeUnmount = "exited-before-unmount";
    public const string Deleted = "deleted";

    /// <summary>The lines for one container, in file order (the file is only ever appended to).</summary>
    public static IReadOnlyList<HookLogEntry> ReadFor(string path, string containerId)
    {
        if (!File.Exists(path)) return Array.Empty<HookLogEntry>();
        var lines = File.ReadAllLines(path);
        var entries = new List<HookLogEntry>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var entry = Parse(i + 1, lines[i]);
            if (entry.Id == containerId) entries.Add(entry);
        }
        return entries;
    }

    private static HookLogEntry Parse(int line, string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        string? Str(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        bool? Bool(string name) => r.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
        int? Int(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
        var entries = r.TryGetProperty("upperDirEntries", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Select(e => e.GetString() ?? "").ToList()
            : new List<string>();
        return new HookLogEntry(
            line,
            Str("hook") ?? throw new InvalidDataException($"hook log line {line} names no hook: {json}"),
            r.GetProperty("time").GetDateTime().ToUniversalTime(),
            Int("shimPid") ?? 0,
            Str("id") ?? "",
            Int("exitStatus"),
            Bool("rootfsMounted") ?? throw new InvalidDataException($"hook log line {line} lacks rootfsMounted: {json}"),
            Str("upperDir"),
            Bool("upperDirExists"),
            entries,
            json);
    }

    public override string ToString() => $"line {Line}: {Raw}";
}
