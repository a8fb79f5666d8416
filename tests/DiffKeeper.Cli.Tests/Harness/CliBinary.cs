using System.Diagnostics;
using Xunit;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>
/// Finds the `diffkeeper` binary under test: $DIFFKEEPER_BIN_DIR/diffkeeper (what `make test` passes), else
/// publishes src/DiffKeeper.Cli into a temporary directory once for the whole test run.
/// </summary>
public sealed class CliBinary : IDisposable
{
    private readonly string? _publishDir;
    private readonly string? _problem;
    private readonly string _path = "";

    public CliBinary()
    {
        var binDir = Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR");
        if (!string.IsNullOrEmpty(binDir))
        {
            _path = Path.Combine(binDir, "diffkeeper");
            if (!File.Exists(_path)) _problem = $"DIFFKEEPER_BIN_DIR is set but {_path} does not exist";
            return;
        }
        var root = FindRepoRoot();
        if (root is null) { _problem = "cannot find the repository root (DiffKeeper.sln) to publish the CLI"; return; }
        _publishDir = Directory.CreateTempSubdirectory("dk-cli-publish-").FullName;
        var psi = new ProcessStartInfo("dotnet",
            ["publish", Path.Combine(root, "src", "DiffKeeper.Cli"), "-c", "Release", "--nologo", "-v", "q", "-o", _publishDir])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        _path = Path.Combine(_publishDir, "diffkeeper");
        if (p.ExitCode != 0 || !File.Exists(_path))
            _problem = $"publishing src/DiffKeeper.Cli failed (exit {p.ExitCode}):\n{Tail(stdout.Result + stderr.Result)}";
    }

    /// <summary>The binary's path; fails the calling test (with the reason) when there is none.</summary>
    public string Executable => _problem is null ? _path : throw new Xunit.Sdk.XunitException(_problem);

    private static string Tail(string s) => s.Length <= 4000 ? s : s[^4000..];

    internal static string? FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DiffKeeper.sln"))) return d.FullName;
        return null;
    }

    public void Dispose()
    {
        if (_publishDir is not null) try { Directory.Delete(_publishDir, true); } catch (IOException) { }
    }
}

/// <summary>All CLI tests share one binary and run one after another (2 cores; the crash test is heavy).</summary>
[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliBinary>
{
    public const string Name = "diffkeeper CLI";
}
