using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Query;

/// <summary>The container's filesystem changes as they stood at one moment.</summary>
public sealed class RecordingState
{
    public long At { get; init; }
    /// <summary>Visible entries by <see cref="RawPath.Key"/>.</summary>
    public Dictionary<string, FileVersion> Entries { get; } = new(StringComparer.Ordinal);
    /// <summary>
    /// Paths whose newest version at the moment is a deletion (a whiteout or an absence), with that version; not
    /// those below a deleted ancestor.
    /// </summary>
    public Dictionary<string, FileVersion> Tombstones { get; } = new(StringComparer.Ordinal);

    public FileVersion? Get(ReadOnlySpan<byte> path) => Entries.GetValueOrDefault(RawPath.Key(path));

    /// <summary>Visible entries sorted so that a directory comes before everything below it.</summary>
    public List<FileVersion> Sorted()
    {
        var list = new List<FileVersion>(Entries.Values);
        list.Sort(static (a, b) => ComparePaths(a.Path, b.Path));
        return list;
    }

    /// <summary>Component-wise order: "a" &lt; "a/b" &lt; "a-b" (a plain byte compare would put "a-b" before "a/b").</summary>
    public static int ComparePaths(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            if (a[i] == b[i]) continue;
            if (a[i] == '/') return -1;
            if (b[i] == '/') return 1;
            return a[i] < b[i] ? -1 : 1;
        }
        return a.Length.CompareTo(b.Length);
    }
}
