namespace DiffKeeper.Shim.Io;

internal enum StdioKind { Null, Fifo, File, Binary }

/// <summary>One stdio destination: a FIFO path, <c>file:///path</c> or <c>binary:///path?k=v</c>.</summary>
internal readonly record struct StdioUri(StdioKind Kind, string Path, IReadOnlyList<KeyValuePair<string, string>> Query)
{
    public static StdioUri Parse(string value)
    {
        if (string.IsNullOrEmpty(value)) return new(StdioKind.Null, "", []);
        int schemeEnd = value.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0) return new(StdioKind.Fifo, value, []);
        var scheme = value[..schemeEnd];
        var uri = new Uri(value);
        var kind = scheme switch
        {
            "fifo" => StdioKind.Fifo,
            "file" => StdioKind.File,
            "binary" => StdioKind.Binary,
            _ => throw new ArgumentException($"unknown STDIO scheme {scheme}"),
        };
        var query = new List<KeyValuePair<string, string>>();
        var q = uri.Query.TrimStart('?');
        if (q.Length > 0)
            foreach (var part in q.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = part.IndexOf('=');
                query.Add(eq < 0
                    ? new(Uri.UnescapeDataString(part), "")
                    : new(Uri.UnescapeDataString(part[..eq]), Uri.UnescapeDataString(part[(eq + 1)..])));
            }
        return new(kind, Uri.UnescapeDataString(uri.AbsolutePath), query);
    }
}
