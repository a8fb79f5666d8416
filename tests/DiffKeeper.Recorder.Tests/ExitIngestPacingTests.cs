using System.Security.Cryptography;

namespace DiffKeeper.Recorder.Tests;

/// <summary>
/// Pacing of exit-state ingests (docs/recorder.md, "Pacing the exit ingest"): while another container is recorded
/// live an exit state is read at <c>ingest.paced_rate</c>; with none it runs at full speed — and either way the
/// exit state is stored whole.
/// </summary>
[Collection(DaemonCollection.Name)]
public sealed class ExitIngestPacingTests
{
    private const int StateMiB = 24;

    [SkippableFact]
    public async Task An_exit_state_is_paced_while_another_container_is_live_and_runs_at_full_speed_when_none_is()
    {
        var (s, port) = await BesideALiveContainer("8MiB", "60s");
        await using var _ = s;
        Assert.Equal(1u, (await s.Daemon.StatusAsync()).ContainersTracked);

        // 24 MiB at 8 MiB/s (after a 2 MiB burst): about 2.7 s held back.
        var (rec1, sum1, took1) = await IngestExitState(s, "exited-1");
        double paced1 = await Metric(port, "diffkeeper_spool_paced_nanoseconds_total") / 1e9;
        Assert.True(paced1 >= 2.0, $"held back {paced1:F2} s, took {took1.TotalSeconds:F2} s:\n{s.Daemon.Log}");
        Assert.True(took1.TotalSeconds >= 2.0, $"took {took1.TotalSeconds:F2} s");
        Assert.Equal(sum1, Sha(s.Cli, rec1));

        // The live container exits (no exit state frozen): nothing is tracked, the next exit state is not held back.
        s.Shell.Exit();
        await s.Daemon.ExitedAsync(s.Info.Namespace, s.Info.Id, "", 0, DateTime.UtcNow);
        Assert.Equal(0u, (await s.Daemon.StatusAsync()).ContainersTracked);
        var (rec2, sum2, _) = await IngestExitState(s, "exited-2");
        Assert.Equal(paced1, await Metric(port, "diffkeeper_spool_paced_nanoseconds_total") / 1e9);
        Assert.Equal(sum2, Sha(s.Cli, rec2));
    }

    [SkippableFact]
    public async Task Pacing_holds_one_exit_state_back_at_most_max_paced_delay_then_it_finishes_at_full_speed()
    {
        var (s, port) = await BesideALiveContainer("1MiB", "1s");
        await using var _ = s;

        // Unbounded, 24 MiB at 1 MiB/s would take 22 s; the budget lets it wait about 1 s, then run free.
        var (rec, sum, took) = await IngestExitState(s, "exited-budget");
        double paced = await Metric(port, "diffkeeper_spool_paced_nanoseconds_total") / 1e9;
        Assert.InRange(paced, 0.9, 3.0);
        Assert.True(took < TimeSpan.FromSeconds(15), $"took {took.TotalSeconds:F1} s:\n{s.Daemon.Log}");
        Assert.Equal(sum, Sha(s.Cli, rec));
    }

    /// <summary>A daemon with these pacing settings (metrics on a free port) recording the scenario's container live.</summary>
    private static async Task<(Scenario, int MetricsPort)> BesideALiveContainer(string rate, string maxDelay)
    {
        var bins = Env.RequireDaemon();
        int port = Ports.Free();
        var s = await Scenario.StartAsync(bins, configToml:
            $"metrics_address = \"127.0.0.1:{port}\"\n[ingest]\npaced_rate = \"{rate}\"\nmax_paced_delay = \"{maxDelay}\"\n");
        try
        {
            var tr = await s.Daemon.TrackAsync(s.Info, DateTime.UtcNow);
            Integration.Require(tr.Reason == "", "live capture is not available: " + tr.Reason);
            return (s, port);
        }
        catch
        {
            await s.DisposeAsync();
            throw;
        }
    }

    /// <summary>A container the daemon never tracked exits with one random file: frozen, announced, ingested.</summary>
    private static async Task<(string Rec, string Sha, TimeSpan Took)> IngestExitState(Scenario s, string id)
    {
        var upper = Path.Combine(s.Dir.Path, id + "-upper");
        Directory.CreateDirectory(upper);
        var data = RandomNumberGenerator.GetBytes(StateMiB << 20);
        File.WriteAllBytes(Path.Combine(upper, "state.bin"), data);
        var info = s.Info.Clone();
        info.Id = id;
        info.UpperDir = upper;
        var exited = DateTime.UtcNow;
        var entry = SpoolEntry.Freeze(s.Spool, upper, info, null, exited.AddSeconds(-1), exited, 0);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await s.Daemon.ExitedAsync(info.Namespace, id, entry, 0, exited);
        SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(90), () => s.Daemon.Log);
        var took = sw.Elapsed;
        var rec = s.Cli.Recordings().Single(r => r.GetProperty("name").GetString() == id).GetProperty("id").GetString()!;
        return (rec, Convert.ToHexString(SHA256.HashData(data)), took);
    }

    private static string Sha(Cli cli, string rec)
    {
        using var dir = new TempDir();
        cli.Export(rec, "end", Path.Combine(dir.Path, "out"));
        return Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir.Path, "out", "state.bin"))));
    }

    private static async Task<double> Metric(int port, string name)
    {
        var body = await DaemonProcess.ScrapeAsync(port);
        var line = body.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
