namespace DiffKeeper.Common.Mounts;

/// <summary>One line of /proc/self/mountinfo: where a file system is mounted, which of its directories is
/// mounted there (ROOT), and its type.</summary>
public readonly record struct MountEntry(string MountPoint, string Root, string FsType);

/// <summary>The mounts of this process's mount namespace, read from /proc/self/mountinfo (proc(5)).</summary>
public static class MountTable
{
    /// <summary>Every mount, in the kernel's order; empty when mountinfo cannot be read.</summary>
    public static IEnumerable<MountEntry> Read()
    {
        IEnumerable<string> lines;
        try { lines = File.ReadLines("/proc/self/mountinfo"); }
        catch (IOException) { yield break; }
        foreach (var line in lines)
        {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            int dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0) continue;
            var f = line[..dash].Split(' ');
            if (f.Length < 5) continue;
            int typeEnd = line.IndexOf(' ', dash + 3);
            string type = typeEnd < 0 ? line[(dash + 3)..] : line[(dash + 3)..typeEnd];
            yield return new MountEntry(Unescape(f[4]), Unescape(f[3]), type);
        }
    }

    /// <summary>Whether some mount lies strictly inside the directory tree <paramref name="root"/> (an absolute,
    /// normalised path without a trailing slash, or "/").</summary>
    public static bool AnyMountBelow(string root)
    {
        string prefix = root == "/" ? "/" : root + "/";
        return Read().Any(m => m.MountPoint != root && m.MountPoint.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash in paths as octal.</summary>
    private static string Unescape(string s) =>
        s.Contains('\\') ? s.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\") : s;
}
