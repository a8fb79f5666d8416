using System.Diagnostics;

namespace DiffKeeper.Recorder.Tests;

/// <summary>
/// The daemon pushes finished recordings on its own (config [push]) to Debian's docker-registry on 127.0.0.1:
/// a failed container's recording arrives, a successful one's does not (when = "failure"), a registry that is
/// down at first is retried with backoff, and /metrics counts it.
/// </summary>
public sealed class PushTests
{
    [SkippableFact]
    public async Task The_daemon_pushes_a_failed_containers_recording_retrying_until_the_registry_is_up()
    {
        var bins = Env.RequireDaemon();
        Integration.Require(Integration.HasTool("docker-registry"), "needs Debian's docker-registry");
        int port = Ports.Free(), metrics = Ports.Free();
        var repo = $"127.0.0.1:{port}/auto/recordings";
        await using var s = await Scenario.StartAsync(bins, configToml: $"""
            metrics_address = "127.0.0.1:{metrics}"
            [push]
            repository = "{repo}"
            when = "failure"
            plain_http = true
            """);

        async Task<ulong> RunAndExit(string what, int status)
        {
            var info = s.Info.Clone();
            info.Id = what + "-" + s.Info.Id;
            var created = DateTime.UtcNow;
            var tr = await s.Daemon.TrackAsync(info, created);
            s.Shell.Step($"echo {what} > {what}.txt");
            Thread.Sleep(300);
            var entry = SpoolEntry.Freeze(tr.SpoolDir, s.Overlay.Upper, info, tr.RecordingId, created, DateTime.UtcNow, status);
            await s.Daemon.ExitedAsync(info.Namespace, info.Id, entry, status, DateTime.UtcNow);
            SpoolEntry.WaitGone(entry, TimeSpan.FromSeconds(30), () => s.Daemon.Log);
            return tr.RecordingId;
        }

        // The registry is not up yet: the first attempt fails and is retried; recording goes on meanwhile.
        var failed = await RunAndExit("failed", 3);
        var ok = await RunAndExit("fine", 0);
        WaitFor(() => s.Daemon.Log.Contains("push: recording") && s.Daemon.Log.Contains("failed (attempt 1"), TimeSpan.FromSeconds(30), s.Daemon.Log);

        var dir = Path.Combine(s.Dir.Path, "registry");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.yml"), $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {dir}/data
            http:
              addr: 127.0.0.1:{port}
            """);
        using var registry = Process.Start(new ProcessStartInfo("docker-registry", ["serve", Path.Combine(dir, "config.yml")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        try
        {
            registry.BeginErrorReadLine();
            registry.BeginOutputReadLine();
            string listed = "";
            WaitFor(() =>
            {
                var (code, o, _) = s.Cli.Run("ls", $"oci://{repo}", "--plain-http", "--json");
                listed = o;
                return code == 0 && o.Contains(failed.ToString("x16"));
            }, TimeSpan.FromSeconds(60), () => s.Daemon.Log + "\nls: " + listed);
            Assert.DoesNotContain(ok.ToString("x16"), listed); // when = "failure": exit 0 is not pushed

            using var http = new HttpClient();
            var m = await http.GetStringAsync($"http://127.0.0.1:{metrics}/metrics");
            Assert.Matches(@"(?m)^diffkeeper_pushes_total 1$", m);
            Assert.Matches(@"(?m)^diffkeeper_push_retries_total [1-9]", m);
            Assert.Matches(@"(?m)^diffkeeper_push_failures_total 0$", m);
        }
        finally
        {
            registry.Kill();
            registry.WaitForExit(10_000);
        }
    }

    [SkippableFact]
    public void A_bad_push_config_is_a_clear_error()
    {
        var bins = Env.RequireDaemon();
        using var dir = new TempDir("dk-daemon-test-", onDisk: true);
        foreach (var (toml, expect) in new[]
        {
            ("push = \"not a repository\"\n", "push must be REGISTRY/REPOSITORY"),
            ("[push]\nwhen = \"always\"\n", "[push] needs repository"),
            ("[push]\nrepository = \"r.example/x\"\nwhen = \"sometimes\"\n", "push.when must be \"always\" or \"failure\""),
            ("[push]\nrepository = \"r.example/x\"\nplain_http = \"yes\"\n", "push.plain_http must be true or false"),
            ("[push]\nrepo = \"r.example/x\"\n", "push.repo"),
        })
        {
            var cfg = Path.Combine(dir.Path, "config.toml");
            File.WriteAllText(cfg, toml);
            using var p = Process.Start(new ProcessStartInfo(bins.Daemon, ["--config", cfg, "--store", Path.Combine(dir.Path, "store"), "--socket", Path.Combine(dir.Path, "s.sock")])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var err = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(10_000));
            Assert.True(p.ExitCode == 2 && err.Contains(expect) && !err.Contains("   at "), $"{toml}: exit {p.ExitCode}: {err}");
        }
    }

    private static void WaitFor(Func<bool> cond, TimeSpan timeout, string log) => WaitFor(cond, timeout, () => log);

    private static void WaitFor(Func<bool> cond, TimeSpan timeout, Func<string> log)
    {
        var until = DateTime.UtcNow + timeout;
        while (!cond())
        {
            if (DateTime.UtcNow > until) throw new Xunit.Sdk.XunitException($"timed out; log:\n{log()}");
            Thread.Sleep(250);
        }
    }

}
