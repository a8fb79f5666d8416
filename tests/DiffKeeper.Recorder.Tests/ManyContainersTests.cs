using System.Net.Sockets;
using Xunit.Abstractions;

namespace DiffKeeper.Recorder.Tests;

/// <summary>Twenty containers recorded at once by one daemon: every one complete; the daemon's peak RSS and frame
/// processing time are printed (the targets live in benchmarks; this test checks behaviour).</summary>
[Collection(DaemonCollection.Name)]
public sealed class ManyContainersTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Twenty_containers_at_once_are_all_recorded()
    {
        var bins = Env.RequireDaemon();
        const int n = 20;
        var scenarios = new List<Scenario>();
        try
        {
            var first = await Scenario.StartAsync(bins);
            scenarios.Add(first);
            for (int i = 1; i < n; i++)
            {
                var s = await Scenario.StartAsync(bins, startDaemon: false);
                s.Daemon = null!;
                scenarios.Add(s);
            }
            var daemon = first.Daemon;
            var recs = new List<ulong>();
            foreach (var s in scenarios)
            {
                var tr = await daemon.TrackAsync(s.Info, DateTime.UtcNow);
                Integration.Require(tr.Reason == "", "live capture is not available: " + tr.Reason);
                recs.Add(tr.RecordingId);
            }
            Assert.Equal((uint)n, (await daemon.StatusAsync()).ContainersTracked);
            // Each writes 30 files of 64 KiB and rewrites one of them, all at once.
            var work = scenarios.Select(s => Task.Run(() =>
            {
                s.Shell.Step("mkdir out; i=0; while [ $i -lt 30 ]; do head -c 65536 /dev/urandom > out/f$i; i=$((i+1)); done; echo changed > out/f0");
            })).ToArray();
            await Task.WhenAll(work);
            Thread.Sleep(1000);
            for (int i = 0; i < n; i++)
            {
                var s = scenarios[i];
                var rec = recs[i].ToString("x16");
                var outDir = Path.Combine(s.Dir.Path, "export-now");
                first.Cli.Export(rec, "end", outDir);
                var expected = TreeListing.Of(s.Overlay.Upper);
                var got = TreeListing.Of(outDir);
                Assert.True(got.SequenceEqual(expected), $"container {i}:\n{TreeListing.Diff(expected, got)}\n{daemon.Log}");
            }
            var status = File.ReadAllLines($"/proc/{daemon.Pid}/status");
            var hwm = status.First(l => l.StartsWith("VmHWM:"));
            var rss = status.First(l => l.StartsWith("VmRSS:"));
            output.WriteLine($"diffkeeperd with {n} containers: {hwm.Trim()}, {rss.Trim()}");
            if (daemon.MetricsPort is int port)
            {
                using var tcp = new TcpClient("127.0.0.1", port);
                var stream = tcp.GetStream();
                await stream.WriteAsync("GET /metrics HTTP/1.0\r\n\r\n"u8.ToArray());
                var body = await new StreamReader(stream).ReadToEndAsync();
                foreach (var line in body.Split('\n').Where(l => l.StartsWith("diffkeeper_") && !l.StartsWith("#")))
                    output.WriteLine(line);
            }
        }
        finally
        {
            foreach (var s in Enumerable.Reverse(scenarios)) await s.DisposeAsync();
        }
    }
}
