using System.Diagnostics;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>
/// The real, published (Native AOT) shim: <c>$DIFFKEEPER_BIN_DIR/containerd-shim-diffkeeper-v1</c> when the run
/// provides it (make test), otherwise published once per test run into a temp directory.
/// </summary>
internal static class ShimBinary
{
    public const string FileName = "containerd-shim-diffkeeper-v1";
    private static readonly Lazy<Task<string>> Located = new(LocateAsync);

    public static Task<string> PathAsync() => Located.Value;

    private static async Task<string> LocateAsync()
    {
        var binDir = Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR");
        if (!string.IsNullOrEmpty(binDir))
        {
            var provided = Path.Combine(binDir, FileName);
            if (!File.Exists(provided)) throw new FileNotFoundException($"DIFFKEEPER_BIN_DIR has no {FileName}", provided);
            return provided;
        }

        var repo = FindRepoRoot();
        var output = Path.Combine(Path.GetTempPath(), $"dks-publish-{Environment.ProcessId}");
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "publish", Path.Combine(repo, "src", "DiffKeeper.Shim"), "-c", "Release", "-o", output, "-v", "q", "--nologo" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var publish = Process.Start(psi)!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync();
        var binary = Path.Combine(output, FileName);
        if (publish.ExitCode != 0 || !File.Exists(binary))
            throw new InvalidOperationException($"dotnet publish of the shim failed ({publish.ExitCode}):\n{await stdout}\n{await stderr}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(output, recursive: true); } catch { }
        };
        return binary;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffKeeper.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("cannot find the repository root (DiffKeeper.sln) above " + AppContext.BaseDirectory);
    }
}
