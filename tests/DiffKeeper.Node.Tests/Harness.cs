using System.Diagnostics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace DiffKeeper.Node.Tests;

/// <summary>Prerequisites (skip, or fail under DIFFKEEPER_REQUIRE_INTEGRATION=1), paths, and running commands.</summary>
public static class Node
{
    private static bool RequireAll => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void Require(bool condition, string what)
    {
        if (condition) return;
        if (RequireAll) throw new Xunit.Sdk.XunitException($"prerequisite missing (DIFFKEEPER_REQUIRE_INTEGRATION=1): {what}");
        Skip.If(true, what);
    }

    public static bool IsRoot => geteuid() == 0;
    [System.Runtime.InteropServices.DllImport("libc")] private static extern uint geteuid();

    public static bool HasTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, name)));

    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "DiffKeeper.sln"))) return d.FullName;
            throw new InvalidOperationException("cannot find the repository root");
        }
    }

    /// <summary>$DIFFKEEPER_BIN_DIR (what `make test` passes), else artifacts/bin from `make build`.</summary>
    public static string BinDir =>
        Environment.GetEnvironmentVariable("DIFFKEEPER_BIN_DIR") is { Length: > 0 } d ? d : Path.Combine(RepoRoot, "artifacts", "bin");

    public static string Cli
    {
        get
        {
            var cli = Path.Combine(BinDir, "diffkeeper");
            Require(File.Exists(cli), $"{cli} is missing: run `make build` first");
            return cli;
        }
    }

    public static string Sample(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Samples", name));
    public static string SamplePath(string name) => Path.Combine(AppContext.BaseDirectory, "Samples", name);
    public static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "scripts", name);

    public static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, int timeoutMs = 120_000, string? cwd = null)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        if (cwd != null) psi.WorkingDirectory = cwd;
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new Xunit.Sdk.XunitException($"{file} {string.Join(' ', args)} did not finish in {timeoutMs / 1000} s:\n{o.Result}\n{e.Result}");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    public static string Ok(string file, params string[] args)
    {
        var (code, o, e) = Run(file, args);
        if (code != 0) throw new Xunit.Sdk.XunitException($"{file} {string.Join(' ', args)} failed (exit {code}):\n{e}\n{o}");
        return o;
    }
}

/// <summary>A temp directory removed at dispose, also when the test failed.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("dk-node-").FullName;
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
}
