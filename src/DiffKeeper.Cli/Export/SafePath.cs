using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli.Export;

/// <summary>
/// Export never trusts stored names: a hostile or corrupt store may hold "..", ".", empty components or absolute
/// names. Only paths made of plain components are exported.
/// </summary>
public static class SafePath
{
    public static bool IsSafe(ReadOnlySpan<byte> path)
    {
        if (path.Length == 0) return false;
        foreach (var range in path.Split((byte)'/'))
        {
            var c = path[range];
            if (c.Length == 0 || c.SequenceEqual("."u8) || c.SequenceEqual(".."u8) || c.IndexOf((byte)0) >= 0) return false;
        }
        return true;
    }

    public static string Describe(byte[] path) => "/" + RawPath.Escape(path);
}
