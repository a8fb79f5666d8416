namespace DiffKeeper.Store.Query;

/// <summary>
/// Matches raw-byte paths against a glob: `*` and `?` stay within one segment, `**` crosses segments
/// (and `**/` may match nothing, so `**/x` matches `x`). A leading `/` in the pattern is optional.
/// </summary>
public sealed class PathGlob
{
    private readonly byte[] _pattern;

    public PathGlob(string pattern)
    {
        var b = Model.RawPath.EncodeArg(pattern).AsSpan();
        while (b.Length > 0 && b[0] == '/') b = b[1..];
        _pattern = b.ToArray();
    }

    public bool IsMatch(ReadOnlySpan<byte> path) => Match(_pattern, path);

    private static bool Match(ReadOnlySpan<byte> p, ReadOnlySpan<byte> s)
    {
        while (p.Length > 0)
        {
            if (p[0] == '*')
            {
                bool deep = p.Length > 1 && p[1] == '*';
                var rest = p[(deep ? 2 : 1)..];
                if (deep && rest.Length > 0 && rest[0] == '/' && Match(rest[1..], s)) return true;
                for (int i = 0; i <= s.Length; i++)
                {
                    if (Match(rest, s[i..])) return true;
                    if (i < s.Length && s[i] == '/' && !deep) return false;
                }
                return false;
            }
            if (s.Length == 0) return false;
            if (p[0] == '?') { if (s[0] == '/') return false; }
            else if (p[0] != s[0]) return false;
            p = p[1..];
            s = s[1..];
        }
        return s.Length == 0;
    }
}
