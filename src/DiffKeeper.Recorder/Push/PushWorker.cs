using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using DiffKeeper.Recorder.Config;
using DiffKeeper.Store.Model;
using Prometheus;

namespace DiffKeeper.Recorder.Push;

/// <summary>
/// Pushes each finished recording to the configured registry (config `push`), on a thread of its own: recording
/// never waits for it. A push is `diffkeeper --store STORE push REC oci://REPO:TAG` (the CLI holds the registry
/// client, its auth and the chunk dedup; it opens the store read-only beside us); a failure is retried with
/// exponential backoff (2 s … 5 min, 8 attempts), then given up and logged. Counted in /metrics.
/// </summary>
internal sealed class PushWorker : IDisposable
{
    public const int MaxAttempts = 8, MaxQueue = 1000;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(2), MaxBackoff = TimeSpan.FromMinutes(5), PushTimeout = TimeSpan.FromMinutes(30);

    private readonly DaemonConfig _config;
    private readonly Action<string> _log;
    private readonly Channel<(string Id, string? Name)> _queue = Channel.CreateBounded<(string, string?)>(
        new BoundedChannelOptions(MaxQueue) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private readonly Counter _pushed, _failed, _retries, _dropped;
    private readonly Gauge _queued;
    private readonly string _cli;

    public PushWorker(DaemonConfig config, CollectorRegistry metrics, Action<string> log)
    {
        _config = config;
        _log = log;
        var f = Prometheus.Metrics.WithCustomRegistry(metrics);
        _pushed = f.CreateCounter("diffkeeper_pushes_total", "Recordings pushed to the configured registry.");
        _failed = f.CreateCounter("diffkeeper_push_failures_total", "Recordings given up on after every retry of their push.");
        _retries = f.CreateCounter("diffkeeper_push_retries_total", "Push attempts that failed and were retried.");
        _dropped = f.CreateCounter("diffkeeper_push_dropped_total", "Recordings not pushed because the push queue was full.");
        _queued = f.CreateGauge("diffkeeper_push_queue", "Recordings waiting for their push.");
        _cli = FindCli();
        _thread = new Thread(Loop) { IsBackground = true, Name = "push" };
        _thread.Start();
    }

    /// <summary>The CLI beside the daemon (a package installs both in one place), else on PATH.</summary>
    private static string FindCli()
    {
        if (Environment.GetEnvironmentVariable("DIFFKEEPER_CLI") is { Length: > 0 } env) return env;
        var beside = Path.Combine(AppContext.BaseDirectory, "diffkeeper");
        return File.Exists(beside) ? beside : "diffkeeper";
    }

    /// <summary>A recording is complete (exit state in, kept): push it if `when` says so. Never blocks.</summary>
    public void Finished(RecordingInfo rec, int exitStatus)
    {
        if (_config.PushWhen == "failure" && exitStatus == 0) return;
        if (_queue.Writer.TryWrite((rec.IdText, rec.Name ?? rec.ContainerId))) _queued.Inc();
        else { _dropped.Inc(); _log($"push: queue full, recording {rec.IdText} not pushed"); }
    }

    /// <summary>A tag for the recording: its name made tag-safe, then its id (unique, and the name for people).</summary>
    public static string Tag(string id, string? name)
    {
        var sb = new StringBuilder();
        foreach (var c in name ?? "")
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '-');
        var clean = sb.ToString().Trim('-', '.');
        if (clean.Length > 100) clean = clean[..100];
        return clean.Length > 0 ? clean + "-" + id : id;
    }

    private void Loop()
    {
        var reader = _queue.Reader;
        try
        {
            while (reader.WaitToReadAsync(_stop.Token).AsTask().GetAwaiter().GetResult())
            {
                while (reader.TryRead(out var item))
                {
                    _queued.Dec();
                    PushWithRetries(item.Id, item.Name);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void PushWithRetries(string id, string? name)
    {
        var target = $"oci://{_config.Push}:{Tag(id, name)}";
        var backoff = FirstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            var (ok, said) = RunPush(id, target);
            if (ok) { _pushed.Inc(); _log($"push: recording {id} pushed to {target}"); return; }
            if (attempt == MaxAttempts || _stop.IsCancellationRequested)
            {
                _failed.Inc();
                _log($"push: recording {id} to {target} failed {attempt} times, giving up: {said}");
                return;
            }
            _retries.Inc();
            _log($"push: recording {id} to {target} failed (attempt {attempt}, again in {backoff.TotalSeconds:0} s): {said}");
            if (_stop.Token.WaitHandle.WaitOne(backoff)) { _failed.Inc(); return; }
            backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
        }
    }

    private (bool Ok, string Said) RunPush(string id, string target)
    {
        var psi = new ProcessStartInfo(_cli) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in (string[])["--store", _config.Store, "push", id, target]) psi.ArgumentList.Add(a);
        if (_config.PushPlainHttp) psi.ArgumentList.Add("--plain-http");
        try
        {
            using var p = Process.Start(psi)!;
            _current = p;
            p.StandardInput.Close();
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(PushTimeout)) { p.Kill(); p.WaitForExit(); return (false, $"no answer within {PushTimeout.TotalMinutes:0} min (stopped)"); }
            var said = (err.Result.Trim() is { Length: > 0 } e ? e : output.Result.Trim()).ReplaceLineEndings(" ");
            return (p.ExitCode == 0, said.Length > 500 ? said[..500] + "…" : said);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            return (false, $"cannot run {_cli}: {e.Message}");
        }
        finally { _current = null; }
    }

    private volatile Process? _current;

    public void Dispose()
    {
        _stop.Cancel();
        _queue.Writer.TryComplete();
        try { _current?.Kill(); } catch (InvalidOperationException) { } // a push in flight is not left behind
        _thread.Join(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
