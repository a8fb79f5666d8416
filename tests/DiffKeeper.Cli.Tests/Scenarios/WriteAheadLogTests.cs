using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// The write-ahead log: a clean writer leaves no data that lives only there (so a damaged or lost log cannot cost
/// anything, and obsolete logs do not inflate the store); a killed writer leaves data only there, and damage to that
/// log must be reported (exit 4), never shown as a recording that silently lost versions.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class WriteAheadLogTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    [SkippableFact]
    public void CleanSnapshot_LeavesNothingOnlyInTheLog_AndNoObsoleteLogsInflateTheStore()
    {
        // 120 MiB of incompressible data: several memtables' worth, so a writer that kept obsolete logs alive (or
        // left its last memtable unflushed) shows up as stored bytes well above the data.
        const int files = 12, size = 10 << 20;
        var tree = MakeTree("t", ("small", "small file"), ("dir/link", "->../small"));
        var rng = new Random(17);
        var contents = new byte[files][];
        for (int i = 0; i < files; i++)
        {
            contents[i] = new byte[size];
            rng.NextBytes(contents[i]);
            File.WriteAllBytes($"{tree}/f{i:D2}", contents[i]);
        }
        Snapshot(tree, "c", "0s");
        File.WriteAllText(tree + "/small", "changed");
        Snapshot(tree, "c", "1s");

        long dataBytes = (long)files * size;
        long logBytes = StoreFiles().Where(IsLog).Sum(f => new FileInfo(f).Length);
        long storeBytes = StoreFiles().Sum(f => new FileInfo(f).Length);
        Output.WriteLine($"store {storeBytes >> 10} KiB for {dataBytes >> 10} KiB of data, write-ahead logs {logBytes} B");
        Assert.True(logBytes < 64 << 10, $"after a clean close the write-ahead logs still hold {logBytes} bytes");
        Assert.True(storeBytes < dataBytes + dataBytes / 20 + (4 << 20),
            $"store holds {storeBytes} bytes for {dataBytes} bytes of incompressible data (obsolete logs?): " +
            string.Join(", ", StoreFiles().Select(f => $"{Path.GetFileName(f)}={new FileInfo(f).Length}")));

        // Nothing lives only in the log: emptying every log loses nothing.
        foreach (var f in StoreFiles().Where(IsLog)) File.WriteAllBytes(f, []);
        Cli.Run("doctor").ExpectOk();
        Assert.Equal("small file", Cli.Run("show", "c", "/small", "--at", "0s").ExpectOk().StdoutText);
        Assert.Equal("changed", Cli.Run("show", "c", "/small", "--at", "1s").ExpectOk().StdoutText);
        for (int i = 0; i < files; i += 5)
            Assert.True(Cli.Run("show", "c", $"/f{i:D2}").ExpectOk().Stdout.AsSpan().SequenceEqual(contents[i]), $"/f{i:D2} differs");
    }

    [SkippableFact]
    public void DamagedLogOfAKilledSnapshot_IsReportedNeverSilentlyDropped()
    {
        Snapshot(MakeTree("t0", ("small", "before the crash")), "c", "0s");

        // A tree ingest writes chunk bytes without the log and commits the version records it holds, with the log,
        // after every 64 MiB of new chunks. So once the log holds more than a few KiB, whole versions live in it
        // and nowhere else (their memtable is far from full), and 192 MiB leave time to kill before the end.
        const int files = 96, size = 2 << 20;
        var big = Tmp.Sub("t1");
        Directory.CreateDirectory(big);
        var rng = new Random(23);
        var contents = new Dictionary<string, byte[]>();
        for (int i = 0; i < files; i++)
        {
            var data = new byte[size];
            rng.NextBytes(data);
            contents[$"f{i:D2}"] = data;
            File.WriteAllBytes($"{big}/f{i:D2}", data);
        }
        var (r, killed) = RunAndKillWhen(["snapshot", big, "--recording", "c", "--at", "1s", "-q"],
            _ => LogBytes() > 64L << 10, TimeSpan.FromMinutes(1));
        Assert.True(killed, $"the snapshot finished before the log held enough to kill it: {r.Describe()}");

        // What a reader sees of the killed snapshot before the damage (replayed from the log).
        var seen = Cli.Run("timeline", "c", "--from", "1s", "--json").ExpectOk().JsonLines()
            .Where(e => Str(e, "kind") == "version").Select(e => Str(e, "path").TrimStart('/'))
            .Where(contents.ContainsKey).ToList();
        long logBytes = LogBytes();
        Output.WriteLine($"killed with {logBytes} log bytes; versions visible: {string.Join(' ', seen)}");
        Assert.True(seen.Count > 0, "no version of the killed snapshot is visible: nothing in the log to damage");

        var logs = StoreFiles().Where(IsLog).Where(f => new FileInfo(f).Length >= 32 << 10).ToList();
        Assert.NotEmpty(logs);
        foreach (var f in logs)
        {
            using var fs = new FileStream(f, FileMode.Open, FileAccess.ReadWrite);
            for (int k = 1; k <= 3; k++)
            {
                fs.Position = fs.Length * k / 4; // inside the log, not its last (possibly torn) record
                int b = fs.ReadByte();
                fs.Position--;
                fs.WriteByte((byte)(b ^ 0xA5));
            }
        }

        var doctor = Cli.Run("doctor");
        Assert.True(doctor.ExitCode == 4, $"doctor should report the damaged log (exit 4): {doctor.Describe()}");
        AssertCleanError(doctor);
        foreach (var (path, expected) in seen.Select(p => ("/" + p, contents[p])).Append(("/small", "before the crash"u8.ToArray())))
        {
            var show = Cli.Run("show", "c", path, "--at", path == "/small" ? "0s" : "1s");
            if (show.ExitCode == 0) Assert.True(show.Stdout.AsSpan().SequenceEqual(expected), $"show {path} printed wrong bytes with exit 0");
            else
            {
                Assert.True(show.ExitCode == 4, $"show {path} of a damaged store: expected exit 4 (3 = silently lost): {show.Describe()}");
                AssertCleanError(show);
            }
        }
    }

    private static bool IsLog(string f) => f.EndsWith(".log", StringComparison.Ordinal) && char.IsAsciiDigit(Path.GetFileName(f)[0]);

    private IEnumerable<string> StoreFiles() =>
        Directory.Exists(StoreDir) ? Directory.EnumerateFiles(StoreDir, "*", SearchOption.AllDirectories) : [];

    private long LogBytes()
    {
        long total = 0;
        try
        {
            foreach (var f in StoreFiles().Where(IsLog))
                try { total += new FileInfo(f).Length; } catch (IOException) { }
        }
        catch (IOException) { }
        return total;
    }
}
