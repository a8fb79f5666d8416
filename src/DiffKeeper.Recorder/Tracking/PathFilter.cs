using DiffKeeper.Store.Query;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>
/// io.diffkeeper/include and io.diffkeeper/exclude: comma-separated path globs matched like `diffkeeper timeline
/// --path` (`*` within a segment, `**` across). An excluded directory excludes everything below it. Directories
/// are always kept when an include list is given (they are what the included files live in).
/// </summary>
internal sealed class PathFilter
{
    public const string IncludeAnnotation = "io.diffkeeper/include", ExcludeAnnotation = "io.diffkeeper/exclude";
    private readonly PathGlob[] _include, _exclude;

    public PathFilter(string? include, string? exclude)
    {
        _include = Parse(include);
        _exclude = Parse(exclude);
    }

    public bool IsEmpty => _include.Length == 0 && _exclude.Length == 0;

    public static PathFilter From(IReadOnlyDictionary<string, string> annotations) =>
        new(annotations.GetValueOrDefault(IncludeAnnotation), annotations.GetValueOrDefault(ExcludeAnnotation));

    private static PathGlob[] Parse(string? list) =>
        string.IsNullOrWhiteSpace(list) ? [] :
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => new PathGlob(p)).ToArray();

    public bool Includes(ReadOnlySpan<byte> path, bool isDirectory)
    {
        if (path.Length == 0) return true;
        // The path itself or any ancestor excluded → out.
        for (int end = path.Length; end > 0; end = path[..end].LastIndexOf((byte)'/'))
            foreach (var g in _exclude) if (g.IsMatch(path[..end])) return false;
        if (_include.Length == 0 || isDirectory) return true;
        for (int end = path.Length; end > 0; end = path[..end].LastIndexOf((byte)'/'))
            foreach (var g in _include) if (g.IsMatch(path[..end])) return true;
        return false;
    }
}
