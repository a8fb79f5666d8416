using System.Diagnostics;
using System.Text;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Cli.Tests.Harness;

public sealed record CliResult(string CommandLine, int ExitCode, byte[] Stdout, string Stderr)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    /// <summary>Every non-empty stdout line parsed as a JSON object (fails the test otherwise).</summary>
    public List<JsonElement> JsonLines()
    {
        var list = new List<JsonElement>();
        foreach (var line in StdoutText.Split('\n'))
        {
            if (line.Trim().Length == 0) continue;
            JsonElement e;
            try { e = JsonDocument.Parse(line).RootElement.Clone(); }
            catch (JsonException ex) { throw new Xunit.Sdk.XunitException($"{CommandLine}: stdout line is not JSON ({ex.Message}): {line}"); }
            Assert.True(e.ValueKind == JsonValueKind.Object, $"{CommandLine}: JSON line is not an object: {line}");
            list.Add(e);
        }
        return list;
    }

    public string Describe() =>
        $"`{CommandLine}` exited {ExitCode}\nstderr: {Trunc(Stderr)}\nstdout: {Trunc(StdoutText)}";

    private static string Trunc(string s) => s.Length <= 2000 ? s : s[..2000] + "…";

    public CliResult ExpectExit(int code)
    {
        Assert.True(ExitCode == code, $"expected exit {code}: {Describe()}");
        return this;
    }

    public CliResult ExpectOk() => ExpectExit(0);
}

/// <summary>
/// Runs the real `diffkeeper` binary. Arguments are raw strings (Latin-1 = bytes) so that non-UTF-8 file names can
/// be passed byte-exact: when any argument holds a non-ASCII byte the process is started through a tiny python3
/// exec shim that decodes base64 arguments (a .NET Process can only pass UTF-8 text).
/// </summary>
public sealed class DiffKeeperCli(string binary, string store)
{
    public string Binary { get; } = binary;
    public string Store { get; } = store;
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Runs with `--store STORE` prepended.</summary>
    public CliResult Run(params string[] args) => RunRaw(["--store", Store, .. args]);

    public CliResult RunRaw(IReadOnlyList<string> args, IDictionary<string, string>? env = null) =>
        Execute(args, env, _ => { });

    /// <summary>Starts the process and hands its pid to <paramref name="onStarted"/> (for the crash test).</summary>
    public CliResult Execute(IReadOnlyList<string> args, IDictionary<string, string>? env, Action<Process> onStarted)
    {
        bool raw = args.Any(a => a.Any(c => c >= 0x80));
        var psi = raw
            ? new ProcessStartInfo("python3", ["-c", ExecShim, RawPath.ToBase64(Binary), .. args.Select(RawPath.ToBase64)])
            : new ProcessStartInfo(Binary, args);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.RedirectStandardInput = true;
        psi.Environment.Remove("DIFFKEEPER_STORE");
        psi.Environment["DIFFKEEPER_SOCKET"] = "/nonexistent/diffkeeper-test.sock"; // never talk to a node's daemon
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        string commandLine = "diffkeeper " + string.Join(' ', args.Select(a => Quote(RawPath.Display(a))));
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = new MemoryStream();
        var outTask = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        var errTask = p.StandardError.ReadToEndAsync();
        onStarted(p);
        if (!p.WaitForExit(Timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{commandLine}: no exit within {Timeout.TotalSeconds} s (killed)");
        }
        outTask.Wait();
        return new CliResult(commandLine, p.ExitCode, stdout.ToArray(), errTask.Result);
    }

    private const string ExecShim =
        "import base64,os,sys; a=[base64.b64decode(x) for x in sys.argv[1:]]; os.execv(a[0], a)";

    private static string Quote(string a) => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"'{a}'" : a;
}
