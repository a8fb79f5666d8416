using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>Per test: a private temp dir holding the store and every scratch tree, removed afterwards.</summary>
public abstract class CliTestBase : IDisposable
{
    protected readonly TempDir Tmp = new("dk-cli-test-", onDisk: true);
    protected readonly ITestOutputHelper Output;
    private readonly CliBinary _binary;
    private DiffKeeperCli? _cli;

    protected CliTestBase(CliBinary binary, ITestOutputHelper output) { _binary = binary; Output = output; }

    protected string StoreDir => Tmp.Sub("store");

    /// <summary>The CLI bound to this test's store (resolving the binary fails the test if there is none).</summary>
    protected DiffKeeperCli Cli => _cli ??= new DiffKeeperCli(_binary.Executable, StoreDir);

    /// <summary>Writes a tree given as (path, content) pairs; a content starting with "->" makes a symlink.</summary>
    protected string MakeTree(string name, params (string Path, string Content)[] entries)
    {
        var dir = Tmp.Sub(name);
        Directory.CreateDirectory(dir);
        foreach (var (p, c) in entries)
        {
            var full = dir + "/" + p;
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            if (c.StartsWith("->", StringComparison.Ordinal)) File.CreateSymbolicLink(full, c[2..]);
            else File.WriteAllText(full, c);
        }
        return dir;
    }

    protected CliResult Snapshot(string dir, string recording, string at) =>
        Cli.Run("snapshot", dir, "--recording", recording, "--at", at, "-q").ExpectOk();

    /// <summary>
    /// Runs the CLI on this test's store and SIGKILLs it as soon as <paramref name="killNow"/> (given the pid) is
    /// true. The watcher is a dedicated thread polling every millisecond: on the thread pool it could wait ~100 ms
    /// per poll while the test thread blocks on the process, and miss the moment it is looking for.
    /// </summary>
    protected (CliResult Result, bool Killed) RunAndKillWhen(string[] args, Func<int, bool> killNow, TimeSpan limit)
    {
        bool killed = false;
        Thread? watcher = null;
        var r = Cli.Execute(["--store", StoreDir, .. args], null, p =>
        {
            watcher = new Thread(() =>
            {
                var deadline = DateTime.UtcNow + limit;
                while (!p.HasExited && DateTime.UtcNow < deadline)
                {
                    if (killNow(p.Id)) { killed = Posix.SendSignal(p.Id, 9); return; }
                    Thread.Sleep(1);
                }
            }) { IsBackground = true, Name = "kill-watcher" };
            watcher.Start();
        });
        watcher?.Join();
        return (r, killed);
    }

    protected static void AssertCleanError(CliResult r)
    {
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.False(lines.Any(l => l.StartsWith("   at ", StringComparison.Ordinal) || l.Contains("Exception:", StringComparison.Ordinal)),
            $"stack trace or exception text on stderr: {r.Describe()}");
        Assert.True(lines.Any(l => l.StartsWith("diffkeeper: ", StringComparison.Ordinal)),
            $"no 'diffkeeper: <what is wrong>' line on stderr: {r.Describe()}");
    }

    protected static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    public void Dispose() => Tmp.Dispose();
}
