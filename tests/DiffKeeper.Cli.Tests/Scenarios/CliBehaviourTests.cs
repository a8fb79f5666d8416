using System.Globalization;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>The contract's promises to scripts: exit codes, help, time syntax, JSON lines, store selection, pack, gc, doctor.</summary>
[Collection(CliCollection.Name)]
public sealed class CliBehaviourTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    public static TheoryData<string, string[]> VerbOptions => new()
    {
        { "snapshot", ["--recording", "--at"] },
        { "ls", ["--json"] },
        { "timeline", ["--from", "--to", "--path"] },
        { "show", ["--at"] },
        { "diff", ["--from", "--to"] },
        { "export", ["--at", "--out"] },
        { "pack", ["-o"] },
        { "gc", ["--keep-last", "--max-bytes", "--keep-failed-only", "--dry-run"] },
        { "doctor", [] },
    };

    [SkippableTheory]
    [MemberData(nameof(VerbOptions))]
    public void HelpOfEveryVerb_ExitsZeroAndNamesItsOptions(string verb, string[] options)
    {
        foreach (var form in new[] { new[] { verb, "--help" }, new[] { verb, "-h" } })
        {
            var r = Cli.RunRaw(form).ExpectOk();
            var text = r.StdoutText + r.Stderr;
            Assert.Contains(verb, text);
            foreach (var o in options) Assert.True(text.Contains(o, StringComparison.Ordinal), $"`{string.Join(' ', form)}` does not mention {o}:\n{text}");
        }
    }

    [SkippableFact]
    public void TopLevelHelpAndVersion_ExitZero()
    {
        var help = Cli.RunRaw(["--help"]).ExpectOk();
        foreach (var verb in new[] { "ls", "timeline", "show", "diff", "export", "snapshot", "pack", "gc", "doctor" })
            Assert.Contains(verb, help.StdoutText + help.Stderr);
        Assert.NotEmpty(Cli.RunRaw(["--version"]).ExpectOk().StdoutText.Trim());
    }

    [SkippableFact]
    public void UsageErrors_ExitTwoWithOneCleanLine()
    {
        var tree = MakeTree("t", ("a", "x"));
        Snapshot(tree, "r", "0s");
        string[][] bad =
        [
            ["no-such-verb"],
            ["ls", "--no-such-flag"],
            ["show", "r", "/a", "--at", "yesterday"],
            ["show", "r", "/a", "--at", "1.5x"],
            ["show", "r", "/a", "--at", "-"],
            ["export", "r", "--at", "0s"],                 // --out missing
            ["diff", "r", "0s"],                           // second time missing
            ["snapshot", tree],                            // --recording missing
            ["timeline", "r", "--from", "soon"],
            ["gc", "--keep-last", "many"],
        ];
        var problems = new List<string>();
        foreach (var args in bad)
        {
            var r = Cli.Run(args);
            if (r.ExitCode != 2) problems.Add($"exit {r.ExitCode}, expected 2: {r.Describe()}");
            else try { AssertCleanError(r); } catch (Exception e) { problems.Add(e.Message); }
        }
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
    }

    [SkippableFact]
    public void NotFound_ExitsThree()
    {
        var tree = MakeTree("t", ("a", "x"));
        Snapshot(tree, "r", "0s");
        string[][] missing =
        [
            ["show", "no-such-recording", "/a", "--at", "0s"],
            ["export", "no-such-recording", "--at", "0s", "--out", Tmp.Sub("o1")],
            ["timeline", "no-such-recording"],
            ["diff", "no-such-recording", "0s", "1s"],
            ["pack", "no-such-recording", "-o", Tmp.Sub("p")],
            ["show", "r", "/no/such/path", "--at", "0s"],
            ["show", "r", "/a", "--at", "2000-01-01T00:00:00Z"],   // before the recording started
            ["show", Tmp.Sub("no-such-file.pack"), "/a"],
        ];
        var problems = new List<string>();
        foreach (var args in missing)
        {
            var r = Cli.Run(args);
            if (r.ExitCode != 3) problems.Add($"exit {r.ExitCode}, expected 3: {r.Describe()}");
            else try { AssertCleanError(r); } catch (Exception e) { problems.Add(e.Message); }
        }
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
    }

    [SkippableFact]
    public void TimeSyntax_OffsetsRfc3339StartAndEnd_PickTheRightVersion()
    {
        var dir = Tmp.Sub("up");
        Directory.CreateDirectory(dir);
        foreach (var (at, text) in new[] { ("0s", "zero"), ("250ms", "quarter"), ("1.5s", "one-and-a-half"), ("2m3s", "late") })
        {
            File.WriteAllText(dir + "/f", text);
            Snapshot(dir, "times", at);
        }
        string Show(string at) => Cli.Run("show", "times", "/f", "--at", at).ExpectOk().StdoutText;
        Assert.Equal("zero", Show("0s"));
        Assert.Equal("zero", Show("249ms"));
        Assert.Equal("quarter", Show("250ms"));        // a moment includes what was recorded at exactly that time
        Assert.Equal("quarter", Show("1s"));
        Assert.Equal("one-and-a-half", Show("1.5s"));
        Assert.Equal("one-and-a-half", Show("1500ms"));
        Assert.Equal("one-and-a-half", Show("2m"));
        Assert.Equal("late", Show("2m3s"));
        // After the newest moment of a recording without an exit is outside it.
        Assert.Equal(3, Cli.Run("show", "times", "/f", "--at", "1h").ExitCode);
        Assert.Equal("zero", Show("start"));
        Assert.Equal("late", Show("end"));

        var ls = Cli.Run("ls", "--json").ExpectOk().JsonLines().Single(j => Str(j, "name") == "times");
        Assert.True(Rfc3339.TryParseNs(Str(ls, "start"), out long start), $"ls start is not RFC 3339: {ls}");
        Assert.Equal("quarter", Show(Rfc3339.Format(start + 1_499_999_999)));
        Assert.Equal("one-and-a-half", Show(Rfc3339.Format(start + 1_500_000_000)));
        Assert.True(ls.GetProperty("versions").GetInt32() >= 4, $"4 versions of /f were recorded: {ls}");
    }

    [SkippableFact]
    public void AbsoluteFirstMoment_IsTheRecordingsStart()
    {
        var tree = MakeTree("t", ("a", "x"));
        const string t0 = "2026-01-02T03:04:05.123456789Z";
        Snapshot(tree, "abs", t0);
        var ls = Cli.Run("ls", "--json").ExpectOk().JsonLines().Single(j => Str(j, "name") == "abs");
        Assert.True(Rfc3339.TryParseNs(Str(ls, "start"), out long start));
        Assert.True(Rfc3339.TryParseNs(t0, out long want));
        Assert.Equal(want, start);
        Assert.Equal("x", Cli.Run("show", "abs", "/a", "--at", "2026-01-02T04:04:05.123456789+01:00").ExpectOk().StdoutText);
    }

    [SkippableFact]
    public void JsonOutput_IsOneObjectPerLineWithTheContractsFields()
    {
        var up = Tmp.Sub("up");
        Directory.CreateDirectory(up);
        File.WriteAllText(up + "/a", "1");
        var snap = Cli.Run("--json", "snapshot", up, "--recording", "j", "--at", "0s").ExpectOk().JsonLines();
        Assert.Single(snap);
        foreach (var f in new[] { "recording", "at", "files", "changed", "bytes_read", "bytes_stored" })
            Assert.True(snap[0].TryGetProperty(f, out _), $"snapshot --json lacks \"{f}\": {snap[0]}");
        File.WriteAllText(up + "/a", "22");
        File.WriteAllText(up + "/b", "new");
        Snapshot(up, "j", "1s");

        var ls = Cli.Run("ls", "--json").ExpectOk().JsonLines();
        Assert.Single(ls);
        foreach (var f in new[] { "id", "name", "container_id", "namespace", "image", "start", "end", "exit_status", "versions", "bytes" })
            Assert.True(ls[0].TryGetProperty(f, out _), $"ls --json lacks \"{f}\": {ls[0]}");
        Assert.Equal(JsonValueKind.Null, ls[0].GetProperty("exit_status").ValueKind);
        // The id names the recording as well as its name does.
        Assert.Equal("22", Cli.Run("show", Str(ls[0], "id"), "/a").ExpectOk().StdoutText);

        var timeline = Cli.Run("timeline", "j", "--json").ExpectOk().JsonLines();
        var versions = timeline.Where(t => Str(t, "kind") == "version").ToList();
        Assert.True(versions.Count >= 3, $"expected at least 3 version rows: {string.Join("\n", timeline)}");
        Assert.All(timeline, t => Assert.True(Rfc3339.TryParseNs(Str(t, "time"), out _), $"time not RFC 3339: {t}"));
        var times = timeline.Select(t => { Rfc3339.TryParseNs(Str(t, "time"), out long ns); return ns; }).ToList();
        Assert.Equal(times.OrderBy(x => x), times);
        Assert.Contains(versions, v => Str(v, "path_b64") == RawPath.ToBase64("b"));
        var onlyB = Cli.Run("timeline", "j", "--json", "--path", "/b").ExpectOk().JsonLines();
        Assert.NotEmpty(onlyB);
        Assert.All(onlyB, t => Assert.Equal(RawPath.ToBase64("b"), Str(t, "path_b64")));
        Assert.True(Rfc3339.TryParseNs(Str(ls[0], "start"), out long start));
        var late = Cli.Run("timeline", "j", "--json", "--from", "500ms").ExpectOk().JsonLines();
        Assert.NotEmpty(late);
        Assert.All(late, t => { Rfc3339.TryParseNs(Str(t, "time"), out long ns); Assert.True(ns >= start + 500_000_000, $"row before --from: {t}"); });

        var diff = Cli.Run("diff", "j", "--from", "0s", "--to", "1s", "--json").ExpectOk().JsonLines();
        var changes = diff.ToDictionary(d => RawPath.FromBase64(Str(d, "path_b64")), d => Str(d, "change"));
        Assert.Equal("modified", changes["a"]);
        Assert.Equal("added", changes["b"]);
        var human = Cli.Run("diff", "j", "0s", "1s").ExpectOk().StdoutText;
        Assert.Contains("M /a", human);
        Assert.Contains("A /b", human);
    }

    [SkippableFact]
    public void HumanOutput_EscapesNamesSoOneRowIsOneLine()
    {
        var up = Tmp.Sub("up");
        Directory.CreateDirectory(up);
        Posix.WriteFile(up + "/" + RawPath.FromUtf8("two\nlines"), "1"u8);
        Posix.WriteFile(up + "/" + RawPath.FromBytes([(byte)'b', 0xFF, (byte)'d']), "2"u8);
        Snapshot(up, "esc", "0s");
        var text = Cli.Run("timeline", "esc").ExpectOk().StdoutText;
        Assert.Contains("two\\nlines", text);
        Assert.Contains("b\\xffd", text);
        Assert.DoesNotContain("two\nlines", text);
        var json = Cli.Run("timeline", "esc", "--json").ExpectOk().JsonLines();
        Assert.Contains(json, j => Str(j, "path_b64") == Convert.ToBase64String([(byte)'b', 0xFF, (byte)'d']));
        // A non-UTF-8 name given on the command line reaches the right file.
        Assert.Equal("2", Cli.Run("show", "esc", "/" + RawPath.FromBytes([(byte)'b', 0xFF, (byte)'d'])).ExpectOk().StdoutText);
    }

    [SkippableFact]
    public void StoreComesFromTheEnvironment_AndTheFlagWins()
    {
        var tree = MakeTree("t", ("a", "env"));
        var envStore = Tmp.Sub("env-store");
        var env = new Dictionary<string, string> { ["DIFFKEEPER_STORE"] = envStore };
        Cli.RunRaw(["snapshot", tree, "--recording", "e", "--at", "0s", "-q"], env).ExpectOk();
        Assert.True(Directory.Exists(envStore) && Directory.EnumerateFileSystemEntries(envStore).Any(), "DIFFKEEPER_STORE was not used");
        Assert.Equal("env", Cli.RunRaw(["show", "e", "/a"], env).ExpectOk().StdoutText);
        // --store overrides the environment (the test's own store is empty), in either position.
        Assert.Equal(3, Cli.RunRaw(["--store", StoreDir, "show", "e", "/a"], env).ExitCode);
        Assert.Equal(3, Cli.RunRaw(["show", "e", "/a", "--store", StoreDir], env).ExitCode);
        Assert.Empty(Cli.RunRaw(["ls", "--json", "--store", StoreDir], env).ExpectOk().JsonLines());
    }

    [SkippableFact]
    public void XattrsOfSymlinksAndSpecialFiles_SurviveExportToADirectoryAndATar()
    {
        Env.RequireRoot(); // only trusted.* and security.* exist on symlinks and fifos
        var up = Tmp.Sub("up");
        Directory.CreateDirectory(up);
        Posix.Symlink("target-that-does-not-exist", up + "/link");
        Posix.MkNod(up + "/fifo", Posix.S_IFIFO | 0x1A4);
        Posix.SetXattr(up + "/link", "trusted.dk-link", [1, 2, 3]);
        Posix.SetXattr(up + "/fifo", "trusted.dk-fifo", "fifo value"u8);
        Snapshot(up, "x", "0s");

        var outDir = Tmp.Sub("out");
        Cli.Run("export", "x", "--at", "0s", "--out", outDir, "-q").ExpectOk();
        Assert.Equal([1, 2, 3], Posix.ListXattrs(outDir + "/link").GetValueOrDefault("trusted.dk-link"));
        Assert.Equal("fifo value"u8.ToArray(), Posix.ListXattrs(outDir + "/fifo").GetValueOrDefault("trusted.dk-fifo"));
        Assert.Equal("target-that-does-not-exist", Posix.ReadLink(outDir + "/link"));

        var tar = Tmp.Sub("t") + "/x.tar";
        var noDir = Cli.Run("export", "x", "--at", "0s", "--out", tar, "-q");
        Assert.True(noDir.ExitCode == 3 && noDir.Stderr.Contains("no directory"), $"a tar in a missing directory: {noDir.Describe()}");
        AssertCleanError(noDir);
        Directory.CreateDirectory(Tmp.Sub("t"));
        Cli.Run("export", "x", "--at", "0s", "--out", tar, "-q").ExpectOk();
        var bytes = File.ReadAllBytes(tar);
        Assert.True(bytes.AsSpan().IndexOf("SCHILY.xattr.trusted.dk-link="u8) >= 0, "the tar has no xattr record for the symlink");
        Assert.True(bytes.AsSpan().IndexOf("SCHILY.xattr.trusted.dk-fifo=fifo value"u8) >= 0, "the tar has no xattr record for the fifo");
    }

    [SkippableFact]
    public void PackedFile_IsAReadOnlyRecording()
    {
        var up = Tmp.Sub("up");
        Directory.CreateDirectory(up + "/sub");
        File.WriteAllText(up + "/sub/a", "first");
        Snapshot(up, "p", "0s");
        File.WriteAllText(up + "/sub/a", "second");
        Snapshot(up, "p", "1s");
        var pack = Tmp.Sub("p.dkrec");
        Cli.Run("pack", "p", "-o", pack, "-q").ExpectOk();
        // Usable without the store, from anywhere.
        var other = new DiffKeeperCli(Cli.Binary, Tmp.Sub("other-store"));
        Assert.Equal("first", other.Run("show", pack, "/sub/a", "--at", "0s").ExpectOk().StdoutText);
        Assert.Equal("second", other.Run("show", pack, "/sub/a", "--at", "end").ExpectOk().StdoutText);
        Assert.NotEmpty(other.Run("timeline", pack, "--json").ExpectOk().JsonLines());
        var outDir = Tmp.Sub("exported");
        other.Run("export", pack, "--at", "0s", "--out", outDir, "-q").ExpectOk();
        Assert.Equal("first", File.ReadAllText(outDir + "/sub/a"));
        Assert.Equal(["M /sub/a"], other.Run("diff", pack, "0s", "1s").ExpectOk().StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.Contains("/sub/a")).Select(l => l.Trim()).ToArray());
    }

    [SkippableFact]
    public void GcKeepsWhatThePolicyKeeps_AndDoctorStaysHealthy()
    {
        var rng = new Random(5);
        for (int i = 0; i < 3; i++)
        {
            var data = new byte[300_000];
            rng.NextBytes(data);
            var dir = Tmp.Sub($"t{i}");
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(dir + "/blob", data);
            File.WriteAllText(dir + "/shared", "same in every recording");
            Snapshot(dir, $"r{i}", "0s");
        }
        Cli.Run("doctor").ExpectOk();
        Assert.Equal(3, Cli.Run("ls", "--json").ExpectOk().JsonLines().Count);
        Cli.Run("gc", "--keep-last", "1", "--dry-run").ExpectOk();
        Assert.Equal(3, Cli.Run("ls", "--json").ExpectOk().JsonLines().Count);
        Cli.Run("gc", "--keep-last", "1").ExpectOk();
        var left = Cli.Run("ls", "--json").ExpectOk().JsonLines();
        Assert.Equal("r2", Str(Assert.Single(left), "name"));
        Assert.Equal(File.ReadAllBytes(Tmp.Sub("t2") + "/blob"), Cli.Run("show", "r2", "/blob").ExpectOk().Stdout);
        Assert.Equal("same in every recording", Cli.Run("show", "r2", "/shared").ExpectOk().StdoutText);
        Assert.Equal(3, Cli.Run("show", "r0", "/blob").ExitCode);
        Cli.Run("doctor").ExpectOk();
    }

    [SkippableFact]
    public void FlippedBytesInTablesAndBlobFiles_DoctorReportsAndShowNeverPrintsWrongBytes() =>
        DamageAndCheck(80 << 20, f => f.EndsWith(".blob", StringComparison.Ordinal) || f.EndsWith(".sst", StringComparison.Ordinal));

    // Damage to the write-ahead log: WriteAheadLogTests (a clean snapshot leaves the log empty, so the log that
    // holds data is the one a killed snapshot leaves).

    /// <summary>
    /// Records a file of <paramref name="size"/> random bytes (80 MiB is more than a memtable: it reaches tables and
    /// blob files), flips bytes in three places of every store file that
    /// <paramref name="target"/> picks, then: doctor must report (exit 4) and show must print the right bytes or
    /// fail with 4 — a "not found" (3) would mean data silently dropped.
    /// </summary>
    private void DamageAndCheck(int size, Func<string, bool> target)
    {
        var rng = new Random(9);
        var big = new byte[size];
        rng.NextBytes(big);
        var tree = MakeTree("t", ("small", "small file"));
        File.WriteAllBytes(tree + "/big", big);
        Snapshot(tree, "c", "0s");
        Cli.Run("doctor").ExpectOk();

        var files = Directory.EnumerateFiles(StoreDir, "*", SearchOption.AllDirectories).Where(target).ToList();
        Assert.True(files.Count > 0, "no store file of the kind to damage: " +
            string.Join(", ", Directory.EnumerateFiles(StoreDir, "*", SearchOption.AllDirectories).Select(Path.GetFileName)));
        Output.WriteLine("damaged: " + string.Join(", ", files.Select(Path.GetFileName)));
        foreach (var f in files)
        {
            using var fs = new FileStream(f, FileMode.Open, FileAccess.ReadWrite);
            if (fs.Length < 64) continue;
            for (int k = 1; k <= 3; k++)
            {
                fs.Position = fs.Length * k / 4;
                int b = fs.ReadByte();
                fs.Position--;
                fs.WriteByte((byte)(b ^ 0xA5));
            }
        }
        var doctor = Cli.Run("doctor");
        var show = Cli.Run("show", "c", "/big");
        Assert.True(doctor.ExitCode == 4, $"doctor should find the damage (exit 4): {doctor.Describe()}\nshow /big: exit {show.ExitCode}, {show.Stdout.Length} bytes, {show.Stderr.Trim()}");
        if (show.ExitCode == 0) Assert.True(show.Stdout.AsSpan().SequenceEqual(big), "show printed wrong bytes with exit 0");
        else { Assert.True(show.ExitCode == 4, $"show on damaged data: expected exit 4 (3 would be data silently lost): {show.Describe()}"); AssertCleanError(show); }
    }

    [SkippableFact]
    public void LockedStore_ExitsFiveForAWriter()
    {
        var tree = MakeTree("t", ("a", "x"));
        Snapshot(tree, "l", "0s");
        var locks = Directory.EnumerateFiles(StoreDir, "LOCK", SearchOption.AllDirectories).ToList();
        Assert.True(locks.Count > 0, "no RocksDB LOCK file in the store");
        // Hold RocksDB's own lock (a POSIX record lock on LOCK) from another process, as a running daemon would.
        var holder = new System.Diagnostics.Process
        {
            StartInfo = new("python3", ["-c",
                "import fcntl,sys; fs=[open(p,'r+') for p in sys.argv[1:]]; [fcntl.lockf(f, fcntl.LOCK_EX) for f in fs]; print('locked', flush=True); sys.stdin.read()",
                .. locks]) { RedirectStandardInput = true, RedirectStandardOutput = true },
        };
        holder.Start();
        try
        {
            Assert.Equal("locked", holder.StandardOutput.ReadLine());
            var r = Cli.Run("snapshot", tree, "--recording", "l", "--at", "1s", "-q");
            Assert.True(r.ExitCode == 5, $"a second writer should get exit 5: {r.Describe()}");
            AssertCleanError(r);
            var ls = Cli.Run("ls");
            Assert.True(ls.ExitCode is 0 or 5, $"ls on a locked store: read it or say busy (5): {ls.Describe()}");
        }
        finally
        {
            holder.StandardInput.Close();
            if (!holder.WaitForExit(5000)) holder.Kill();
            holder.Dispose();
        }
    }
}
