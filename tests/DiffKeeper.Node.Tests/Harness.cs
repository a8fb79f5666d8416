using System.Diagnostics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace DiffKeeper.Node.Tests;

/// <summary>Paths and running commands (prerequisites: <see cref="Integration"/>).</summary>
public static class Node
{
    public static string RepoRoot => Binaries.RequireRepoRoot();

    /// <summary>The `diffkeeper` binary (<see cref="Binaries"/>: $DIFFKEEPER_BIN_DIR or artifacts/bin).</summary>
    public static string Cli => Binaries.Require(Binaries.Cli);

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

