using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// SIGKILL in the middle of ingesting a big snapshot: the store must open and check clean afterwards, and the
/// moment shows either the whole new version or none of it — never half a tree or half a file.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CrashTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private const int Files = 30, FileSize = 10 << 20; // 300 MiB

    [SkippableFact]
    public void KilledMidIngest_StoreOpensAndTheMomentIsAllOrNothing()
    {
        var before = MakeTree("v0", ("keep.txt", "before the crash"), ("data/file07.bin", "old content of file07"));
        Snapshot(before, "crash", "0s");
        var previous = TreeReader.Read(before);

        var big = Tmp.Sub("v1");
        Directory.CreateDirectory(big + "/data");
        var rng = new Random(1234);
        var buf = new byte[FileSize];
        for (int i = 0; i < Files; i++)
        {
            rng.NextBytes(buf);
            File.WriteAllBytes($"{big}/data/file{i:D2}.bin", buf);
        }
        long baseline = StoreBytes();
        // Kill once the store has taken about a third of the data: mid-ingest, not before it began.
        var (r, killed) = RunAndKillWhen(["snapshot", big, "--recording", "crash", "--at", "1s", "-q"],
            pid => StoreBytes() - baseline > 100L << 20 || BytesRead(pid) > 100L << 20, TimeSpan.FromMinutes(2));
        Output.WriteLine($"snapshot exit {r.ExitCode}, killed={killed}, store grew {(StoreBytes() - baseline) >> 20} MiB");
        Assert.True(killed, $"the snapshot finished before it could be killed mid-ingest: {r.Describe()}");

        Cli.Run("ls").ExpectOk();
        var doctor = Cli.Run("doctor");
        Assert.True(doctor.ExitCode == 0, $"store after SIGKILL: {doctor.Describe()}");

        var outDir = Tmp.Sub("after");
        // "end" is the newest recorded moment: 1s if the killed snapshot counts, else 0s (then 1s is outside the recording).
        Cli.Run("export", "crash", "--at", "end", "--out", outDir, "-q").ExpectOk();
        var got = TreeReader.Read(outDir);
        // The snapshotted directory is the whole state at 1s: keep.txt, not in it, is deleted then.
        var full = TreeReader.Read(big);
        // Atomicity is the question here; mtimes are judged by the property tests.
        var compare = new CompareOptions(HardLinks: false, Mtime: false);
        var asBefore = TreeComparer.Differences(previous, got, compare);
        var asFull = TreeComparer.Differences(full, got, compare);
        Assert.True(asBefore.Count == 0 || asFull.Count == 0,
            "the killed snapshot left a partial state:\n vs previous: " + string.Join("\n  ", asBefore.Take(10)) +
            "\n vs full: " + string.Join("\n  ", asFull.Take(10)));

        // The store still takes new versions.
        Snapshot(big, "crash", "2s");
        Posix.RemoveTree(outDir);
        Cli.Run("export", "crash", "--at", "2s", "--out", outDir, "-q").ExpectOk();
        Assert.Empty(TreeComparer.Differences(full, TreeReader.Read(outDir), compare));
        Cli.Run("doctor").ExpectOk();
    }

    /// <summary>What the process has read so far (rchar in /proc/PID/io): a progress signal that needs no output.</summary>
    private static long BytesRead(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/io"))
                if (line.StartsWith("rchar:", StringComparison.Ordinal)) return long.Parse(line[6..].Trim());
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    private long StoreBytes()
    {
        long total = 0;
        try
        {
            foreach (var f in Directory.EnumerateFiles(StoreDir, "*", SearchOption.AllDirectories))
                try { total += new FileInfo(f).Length; } catch (IOException) { }
        }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
        return total;
    }
}
