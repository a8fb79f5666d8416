using System.Security.Cryptography;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>
/// A directory tree as comparable lines: path, type, permission bits, size, content hash or link target. Overlay
/// whiteouts (character devices 0:0) are left out: in a recording they are deletions, which an export does not write.
/// </summary>
public static class TreeListing
{
    public static List<string> Of(string root)
    {
        var lines = new List<string>();
        Walk(root, "", lines);
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private static void Walk(string root, string rel, List<string> lines)
    {
        foreach (var entry in new DirectoryInfo(Path.Combine(root, rel)).EnumerateFileSystemInfos())
        {
            var p = rel.Length == 0 ? entry.Name : rel + "/" + entry.Name;
            var mode = Convert.ToString((int)File.GetUnixFileMode(entry.FullName) & 0xFFF, 8);
            if (entry.LinkTarget != null) { lines.Add($"{p} symlink -> {entry.LinkTarget}"); continue; }
            if (entry is DirectoryInfo) { lines.Add($"{p} dir {mode}"); Walk(root, p, lines); continue; }
            if (entry is FileInfo f && (f.Attributes & FileAttributes.Device) == 0 && IsRegular(f.FullName))
            {
                using var s = File.OpenRead(f.FullName);
                lines.Add($"{p} file {mode} {f.Length} {Convert.ToHexString(SHA256.HashData(s))[..16]}");
                continue;
            }
            if (IsWhiteout(entry.FullName)) continue;
            lines.Add($"{p} special {mode}");
        }
    }

    private static bool IsRegular(string path) => Env.Run("stat", "-c", "%F", path).Trim() is "regular file" or "regular empty file";

    private static bool IsWhiteout(string path) => Env.Run("stat", "-c", "%F %t:%T", path).Trim() == "character special file 0:0";

    public static string Diff(List<string> expected, List<string> actual)
    {
        var missing = expected.Except(actual).Select(l => "- " + l);
        var extra = actual.Except(expected).Select(l => "+ " + l);
        return string.Join('\n', missing.Concat(extra));
    }
}
