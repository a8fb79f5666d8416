namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// Finds the DiffKeeper shim binary: $DIFFKEEPER_BIN_DIR/containerd-shim-diffkeeper-v1 (what `make test` passes),
/// or, when that variable is unset, publishes src/DiffKeeper.Shim into a temp dir once per test process.
/// </summary>
public static class DiffKeeperShimLocator
{
    private static readonly Lazy<Task<(string? Path, string? WhyMissing)>> Located = new(LocateOnceAsync);
    private static string? _publishDir;

    public static Task<(string? Path, string? WhyMissing)> LocateAsync() => Located.Value;

    private static async Task<(string?, string?)> LocateOnceAsync()
    {
        var binary = ShimRuntimes.BinaryName(ShimRuntimes.DiffKeeper);
        var binDir = Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR");
        if (!string.IsNullOrEmpty(binDir))
        {
            // A relative DIFFKEEPER_BIN_DIR (e.g. artifacts/bin) means the repository's, not the test host's cwd.
            var dir = Path.IsPathRooted(binDir) ? binDir : Path.Combine(FindRepoRoot() ?? Directory.GetCurrentDirectory(), binDir);
            var p = Path.Combine(Path.GetFullPath(dir), binary);
            return File.Exists(p) ? (p, null) : (null, $"DIFFKEEPER_BIN_DIR={binDir} has no {binary}");
        }

        var repo = FindRepoRoot();
        if (repo == null) return (null, "DIFFKEEPER_BIN_DIR unset and the repository root (DiffKeeper.sln) was not found");
        _publishDir = Directory.CreateTempSubdirectory("dk-shim-pub-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(_publishDir, true); } catch (Exception) { } };
        var publish = await ExternalCommand.RunAsync("dotnet",
            new[] { "publish", Path.Combine(repo, "src", "DiffKeeper.Shim"), "-c", "Release", "--nologo", "-v", "q", "-o", _publishDir },
            TimeSpan.FromMinutes(10));
        var published = Path.Combine(_publishDir, binary);
        if (publish.ExitCode == 0 && File.Exists(published)) return (published, null);
        var tail = string.Join('\n', publish.Output.Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Take(10));
        return (null, $"DIFFKEEPER_BIN_DIR unset and `dotnet publish src/DiffKeeper.Shim` failed (exit {publish.ExitCode}):\n{tail}");
    }

    private static string? FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffKeeper.sln"))) return dir.FullName;
        return null;
    }
}
