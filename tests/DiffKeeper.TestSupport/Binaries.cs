using System.Diagnostics;

namespace DiffKeeper.TestSupport;

/// <summary>
/// Where the binaries under test are: <c>$DIFFKEEPER_BIN_DIR</c> (what `make test` passes; a relative one means the
/// repository's), else the repository's <c>artifacts/bin</c> (left by `make build`). Tests that can build what they
/// need when no bin dir is given use <see cref="LocateOrPublishAsync"/>.
/// </summary>
public static class Binaries
{
    public const string Shim = "containerd-shim-diffkeeper-v1";
    public const string Cli = "diffkeeper";
    public const string Daemon = "diffkeeperd";
    public const string BpfObject = "diffkeeper.bpf.o";

    private static readonly Dictionary<string, Lazy<Task<(string? Path, string? Problem)>>> Published = new();

    /// <summary>The repository root (the directory holding DiffKeeper.sln) above the test binaries, or null.</summary>
    public static string? RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "DiffKeeper.sln"))) return d.FullName;
            return null;
        }
    }

    /// <summary>The repository root; throws when the tests do not run from inside the repository.</summary>
    public static string RequireRepoRoot() =>
        RepoRoot ?? throw new InvalidOperationException("cannot find the repository root (DiffKeeper.sln) above " + AppContext.BaseDirectory);

    /// <summary>$DIFFKEEPER_BIN_DIR, when set.</summary>
    public static string? GivenDir
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR");
            if (string.IsNullOrEmpty(dir)) return null;
            return Path.GetFullPath(Path.IsPathRooted(dir) ? dir : Path.Combine(RepoRoot ?? Directory.GetCurrentDirectory(), dir));
        }
    }

    /// <summary>$DIFFKEEPER_BIN_DIR, else the repository's artifacts/bin (null when neither can be named).</summary>
    public static string? Dir => GivenDir ?? (RepoRoot is { } root ? Path.Combine(root, "artifacts", "bin") : null);

    /// <summary>The path of <paramref name="name"/> in <see cref="Dir"/>, or why there is none.</summary>
    public static (string? Path, string? Problem) Find(string name)
    {
        if (Dir is not { } dir) return (null, $"cannot find artifacts/bin for {name} (set DIFFKEEPER_BIN_DIR)");
        var path = Path.Combine(dir, name);
        return File.Exists(path) ? (path, null) : (null, $"{path} is missing: run `make build` first (or set DIFFKEEPER_BIN_DIR)");
    }

    /// <summary>The path of <paramref name="name"/>: skips the test (fails it under DIFFKEEPER_REQUIRE_INTEGRATION=1) without it.</summary>
    public static string Require(string name)
    {
        var (path, problem) = Find(name);
        Integration.Require(path is not null, problem ?? "");
        return path!;
    }

    /// <summary>
    /// <paramref name="name"/> from $DIFFKEEPER_BIN_DIR when set; otherwise `dotnet publish` of
    /// <paramref name="project"/> (e.g. "src/DiffKeeper.Shim") into a temp directory, once per test process (removed at
    /// its exit), so a developer's run tests the code as it is, not a stale artifacts/bin.
    /// </summary>
    public static Task<(string? Path, string? Problem)> LocateOrPublishAsync(string name, string project)
    {
        if (GivenDir is { } given)
        {
            var path = Path.Combine(given, name);
            return Task.FromResult(File.Exists(path) ? (path, (string?)null) : ((string?)null, $"DIFFKEEPER_BIN_DIR={given} has no {name}"));
        }
        Lazy<Task<(string?, string?)>> once;
        lock (Published)
            if (!Published.TryGetValue(project, out once!))
                Published[project] = once = new(() => PublishAsync(name, project));
        return once.Value;
    }

    /// <summary><see cref="LocateOrPublishAsync"/>, failing the calling test when there is no binary.</summary>
    public static async Task<string> RequireOrPublishAsync(string name, string project)
    {
        var (path, problem) = await LocateOrPublishAsync(name, project);
        return path ?? throw new Xunit.Sdk.XunitException(problem);
    }

    private static async Task<(string?, string?)> PublishAsync(string name, string project)
    {
        if (RepoRoot is not { } root) return (null, $"DIFFKEEPER_BIN_DIR unset and the repository root (DiffKeeper.sln) was not found to publish {project}");
        var output = Directory.CreateTempSubdirectory("dk-publish-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(output, recursive: true); } catch (IOException) { } };
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "publish", Path.Combine(root, project), "-c", "Release", "--nologo", "-v", "q", "-o", output },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var publish = Process.Start(psi)!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync();
        var binary = Path.Combine(output, name);
        if (publish.ExitCode == 0 && File.Exists(binary)) return (binary, null);
        var text = await stdout + await stderr;
        return (null, $"DIFFKEEPER_BIN_DIR unset and `dotnet publish {project}` failed (exit {publish.ExitCode}):\n{(text.Length <= 4000 ? text : text[^4000..])}");
    }
}
