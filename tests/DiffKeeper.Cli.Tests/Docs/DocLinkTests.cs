using System.Text;
using System.Text.RegularExpressions;
using DiffKeeper.Cli.Tests.Harness;
using Xunit;

namespace DiffKeeper.Cli.Tests.Docs;

/// <summary>
/// Every relative link in the repository's Markdown (README.md, docs/, the READMEs under src/, tests/ and
/// packaging/) names a file that exists, and a <c>#fragment</c> names a heading of that file (GitHub's anchors).
/// Links inside code blocks and code spans are not links.
/// </summary>
public sealed partial class DocLinkTests
{
    [Fact]
    public void EveryRelativeLinkInTheDocsResolves()
    {
        var root = Binaries.RequireRepoRoot();
        var files = MarkdownFiles(root).ToList();
        Assert.Contains(files, f => f.EndsWith(Path.Combine("docs", "architecture.md"), StringComparison.Ordinal));
        var broken = new List<string>();
        int checkedLinks = 0;
        foreach (var file in files)
        {
            foreach (var target in Links(File.ReadAllText(file)))
            {
                if (UriScheme().IsMatch(target)) continue; // http:, https:, mailto: …
                checkedLinks++;
                var hash = target.IndexOf('#');
                var pathPart = hash < 0 ? target : target[..hash];
                var fragment = hash < 0 ? null : target[(hash + 1)..];
                var resolved = pathPart.Length == 0 ? file : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, Uri.UnescapeDataString(pathPart)));
                var where = $"{Path.GetRelativePath(root, file)}: ({target})";
                if (!File.Exists(resolved) && !Directory.Exists(resolved)) { broken.Add($"{where}: no such file"); continue; }
                if (fragment is { Length: > 0 } && !(resolved.EndsWith(".md", StringComparison.Ordinal) && Anchors(File.ReadAllText(resolved)).Contains(fragment)))
                    broken.Add($"{where}: no heading with that anchor");
            }
        }
        Assert.True(checkedLinks > 20, $"only {checkedLinks} relative links found: is the scan still reading the docs?");
        Assert.True(broken.Count == 0, "broken links:\n" + string.Join("\n", broken));
    }

    [Theory]
    [InlineData("## Hooks (raw tracepoints; no tracefs needed)", "hooks-raw-tracepoints-no-tracefs-needed")]
    [InlineData("### 7. Delete: the freeze", "7-delete-the-freeze")]
    [InlineData("### Why not `writeback_mark_inode_dirty` (the first plan)", "why-not-writeback_mark_inode_dirty-the-first-plan")]
    [InlineData("## Why the overlay's upper directory", "why-the-overlays-upper-directory")]
    public void AnchorsAreGitHubs(string heading, string anchor) => Assert.Contains(anchor, Anchors(heading + "\n"));

    private static IEnumerable<string> MarkdownFiles(string root)
    {
        yield return Path.Combine(root, "README.md");
        foreach (var dir in new[] { "docs", "src", "tests", "packaging" })
        {
            var d = Path.Combine(root, dir);
            if (!Directory.Exists(d)) continue;
            var search = dir == "docs" ? "*.md" : "README.md";
            foreach (var f in Directory.EnumerateFiles(d, search, SearchOption.AllDirectories))
                if (!f.Contains($"{Path.DirectorySeparatorChar}node_modules{Path.DirectorySeparatorChar}") &&
                    !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") &&
                    !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
                    yield return f;
        }
    }

    /// <summary>The targets of inline links, outside fenced code blocks and code spans.</summary>
    private static IEnumerable<string> Links(string markdown)
    {
        foreach (var line in Prose(markdown))
            foreach (Match m in Link().Matches(CodeSpan().Replace(line, "")))
                yield return m.Groups[1].Value;
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered.</summary>
    private static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in Prose(markdown))
        {
            var h = Heading().Match(line);
            if (!h.Success) continue;
            var sb = new StringBuilder();
            foreach (var c in h.Groups[1].Value.Trim().ToLowerInvariant())
            {
                if (char.IsLetterOrDigit(c) || c is '_' or '-') sb.Append(c);
                else if (c == ' ') sb.Append('-');
            }
            var slug = sb.ToString();
            var unique = slug;
            for (int n = 1; !anchors.Add(unique); n++) unique = $"{slug}-{n}";
        }
        return anchors;
    }

    private static IEnumerable<string> Prose(string markdown)
    {
        bool fenced = false;
        foreach (var line in markdown.Split('\n'))
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal)) { fenced = !fenced; continue; }
            if (!fenced) yield return line;
        }
    }

    [GeneratedRegex(@"\[[^\]]*\]\(([^)\s]+)\)")] private static partial Regex Link();
    [GeneratedRegex(@"`[^`]*`")] private static partial Regex CodeSpan();
    [GeneratedRegex(@"^#{1,6}\s+(.*)$")] private static partial Regex Heading();
    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*:")] private static partial Regex UriScheme();
}
