using System.Diagnostics;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Export;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

/// <summary>
/// `diffkeeper bisect`: the first moment at which a check fails. The moments are the recording's distinct version
/// and event times in [from, to]; the last one is probed first (it must be bad, or there is nothing to find), then
/// a binary search between "before the first moment" and the known bad one: ceil(log2(n)) + 1 probes, 7 for 64.
/// The first moment in range is not assumed good: when it is bad, it is reported as the first bad moment.
/// </summary>
public static class BisectVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var cmd = a.Value("test") ?? throw new UsageException("bisect needs --test CMD (run with sh -c in the exported state; exit 0 = good)");
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        long from = a.Value("from") is { } f ? TimeArgs.Moment(f, rec, "--from") : rec.Start;
        long to = a.Value("to") is { } t ? TimeArgs.Moment(t, rec, "--to") : rec.End;
        if (from > to) throw new UsageException("--from is after --to");
        var moments = MomentsOf(src.Store, rec.Id, from, to);
        if (moments.Count == 0)
            throw new NotFoundException($"no recorded moment between {Moments.Format(from)} and {Moments.Format(to)}");

        bool keep = a.Flags.Contains("keep");
        // --replay: each probe runs CMD inside a container replayed at the moment (its files over the recorded
        // image), from /, its output on our stderr; nothing is kept (--keep keeps an exported state only).
        var replay = a.Flags.Contains("replay") ? ReplayOptions.From(a) with { OutputToStderr = true, Cwd = "/" } : null;
        if (replay is not null && keep) throw new UsageException("--keep keeps an exported state: it does not go with --replay");
        var work = Directory.CreateTempSubdirectory("diffkeeper-bisect-");
        string? kept = null;
        try
        {
            int probes = 0;
            var results = new Dictionary<int, int>();
            int Probe(int i)
            {
                probes++;
                var dir = Path.Combine(work.FullName, "m" + i);
                int code = replay is null ? RunCheck(src.Store, rec, moments[i], dir, cmd, a.Quiet) : ReplayCheck(src, moments[i], cmd, replay, ctx);
                results[i] = code;
                string verdict = code == 0 ? "good" : "bad";
                if (a.Json)
                    ctx.Out.Json(w =>
                    {
                        w.WriteNumber("probe", probes);
                        w.WriteNumber("moment", i + 1);
                        w.WriteNumber("moments", moments.Count);
                        w.WriteString("offset", Moments.FormatOffset(moments[i] - rec.Start));
                        w.Time("time", moments[i]);
                        w.WriteString("result", verdict);
                        w.WriteNumber("exit_code", code);
                    });
                else
                    ctx.Out.Line($"probe {probes}: moment {i + 1}/{moments.Count} +{Moments.FormatOffset(moments[i] - rec.Start)} ({Moments.Format(moments[i])}): {verdict}" +
                                 (code == 0 ? "" : $" (exit {code})"));
                ctx.Out.Flush();
                if (code == 0 || !keep) DeleteTree(dir);
                return code;
            }

            int last = moments.Count - 1;
            if (Probe(last) == 0)
                throw new NotFoundException($"the test passes at the last moment in range (+{Moments.FormatOffset(moments[last] - rec.Start)}): no bad moment to find");
            int lo = -1, hi = last;   // lo: newest known good (-1 = none), hi: oldest known bad
            while (hi - lo > 1)
            {
                int mid = lo + (hi - lo) / 2;
                if (Probe(mid) == 0) lo = mid; else hi = mid;
            }
            if (keep)
            {
                kept = Path.Combine(Path.GetTempPath(), $"diffkeeper-bisect-{rec.IdText}-{Environment.ProcessId}");
                Directory.Move(Path.Combine(work.FullName, "m" + hi), kept);
            }
            Report(ctx, a.Json, src.Store, rec, moments, lo, hi, probes, results[hi], kept);
            return 0;
        }
        finally { DeleteTree(work.FullName); }
    }

    /// <summary>The distinct times of the recording's versions and events in [from, to], ascending.</summary>
    public static List<long> MomentsOf(RecordingStore store, ulong rec, long from, long to)
    {
        var set = new SortedSet<long>();
        foreach (var row in TimelineQuery.Rows(store, rec, from, to, null)) set.Add(row.Time);
        return [.. set];
    }

    /// <summary>A probe in a replayed container: sh -c CMD with the same DIFFKEEPER_* variables (DIFFKEEPER_STATE is /).</summary>
    private static int ReplayCheck(RecordingSource src, long at, string cmd, ReplayOptions options, CliContext ctx) =>
        ReplayVerb.Replay(src, at, ["sh", "-c", cmd], options with
        {
            Env = ["DIFFKEEPER_STATE=/", "DIFFKEEPER_TIME=" + Moments.Format(at), "DIFFKEEPER_OFFSET=" + Moments.FormatOffset(at - src.Recording.Start)],
        }, ctx);

    private static int RunCheck(RecordingStore store, RecordingInfo rec, long at, string dir, string cmd, bool quiet)
    {
        var state = StateQuery.At(store, rec.Id, at, withChunks: true);
        using (var exporter = new DirectoryExporter(store, dir, new Progress(false)))
        {
            exporter.Export(state).ThrowIfUnsafe();
        }
        var psi = new ProcessStartInfo("/bin/sh")
        {
            WorkingDirectory = dir,
            UseShellExecute = false,
            RedirectStandardInput = true,
            // The check's output goes to our stderr: stdout carries the probes (and --json lines) only.
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(cmd);
        psi.Environment["DIFFKEEPER_STATE"] = dir;
        psi.Environment["DIFFKEEPER_TIME"] = Moments.Format(at);
        psi.Environment["DIFFKEEPER_OFFSET"] = Moments.FormatOffset(at - rec.Start);
        using var p = Process.Start(psi) ?? throw new IOException("cannot start /bin/sh");
        p.StandardInput.Close();
        var err = Console.Error;
        void Forward(object? _, DataReceivedEventArgs e) { if (e.Data != null && !quiet) lock (err) err.WriteLine("  | " + e.Data); }
        p.OutputDataReceived += Forward;
        p.ErrorDataReceived += Forward;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.WaitForExit();
        return p.ExitCode;
    }

    private static void Report(CliContext ctx, bool json, RecordingStore store, RecordingInfo rec, List<long> moments, int lo, int hi, int probes, int exitCode, string? kept)
    {
        long bad = moments[hi];
        var rows = TimelineQuery.Rows(store, rec.Id, bad, bad, null);
        // What changed into the bad moment: against the last good one, else against the moment just before it.
        long? before = lo >= 0 ? moments[lo] : null;
        if (before == null)
        {
            var all = MomentsOf(store, rec.Id, long.MinValue, bad - 1);
            if (all.Count > 0) before = all[^1];
        }
        List<DiffRow> changes = before is long b ? DiffQuery.Between(store, rec.Id, b, bad) : [];
        var events = rows.Where(r => r.Event != null).Select(r => r.Event!).ToList();
        if (json)
        {
            ctx.Out.Json(w =>
            {
                w.WriteStartObject("first_bad");
                w.WriteNumber("moment", hi + 1);
                w.WriteString("offset", Moments.FormatOffset(bad - rec.Start));
                w.Time("time", bad);
                w.WriteNumber("exit_code", exitCode);
                w.WriteEndObject();
                if (lo >= 0)
                {
                    w.WriteStartObject("last_good");
                    w.WriteNumber("moment", lo + 1);
                    w.WriteString("offset", Moments.FormatOffset(moments[lo] - rec.Start));
                    w.Time("time", moments[lo]);
                    w.WriteEndObject();
                }
                else w.WriteNull("last_good");
                w.WriteNumber("moments", moments.Count);
                w.WriteNumber("probes", probes);
                w.WriteStartArray("changes");
                foreach (var c in changes)
                {
                    w.WriteStartObject();
                    w.WriteString("change", c.Change.ToString().ToLowerInvariant());
                    w.PathFields("path", c.Path);
                    w.PathFields("from_path", c.FromPath);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("events");
                foreach (var e in events)
                {
                    w.WriteStartObject();
                    w.WriteString("kind", e.Kind);
                    w.PathFields("path", e.Path.Length > 0 ? e.Path : null);
                    if (e.Pid is int pid) w.WriteNumber("pid", pid); else w.WriteNull("pid");
                    w.StringOrNull("comm", e.Comm);
                    w.StringOrNull("detail", e.Detail);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.StringOrNull("kept", kept);
            });
            return;
        }
        ctx.Out.Line("");
        ctx.Out.Line($"first bad moment: +{Moments.FormatOffset(bad - rec.Start)} {Moments.Format(bad)} (moment {hi + 1} of {moments.Count}, {probes} probes)");
        ctx.Out.Line(lo >= 0
            ? $"last good moment: +{Moments.FormatOffset(moments[lo] - rec.Start)} {Moments.Format(moments[lo])}"
            : "the test already fails at the first moment in range (no good moment in it)");
        ctx.Out.Line(before is long bb ? $"changes since +{Moments.FormatOffset(bb - rec.Start)}:" : "changes: (nothing recorded before this moment)");
        foreach (var c in changes)
        {
            char code = c.Change switch
            {
                ChangeKind.Added => 'A', ChangeKind.Modified => 'M', ChangeKind.Deleted => 'D', ChangeKind.Renamed => 'R', _ => 'T',
            };
            ctx.Out.Line(c.FromPath != null ? $"  {code} {Human.Path(c.FromPath)} -> {Human.Path(c.Path)}" : $"  {code} {Human.Path(c.Path)}");
        }
        if (changes.Count == 0 && before != null) ctx.Out.Line("  (no change to the state: the failure comes from events at this moment)");
        var procs = events.Where(e => e.Pid != null || e.Comm != null).ToList();
        if (procs.Count == 0) ctx.Out.Line("processes: none recorded (a snapshot-only recording has no process events)");
        else
        {
            ctx.Out.Line("processes:");
            foreach (var e in procs)
                ctx.Out.Line($"  {e.Comm ?? "?"}{(e.Pid is int pid ? $" [{pid}]" : "")}: {e.Kind}{(e.Path.Length > 0 ? " " + Human.Path(e.Path) : "")}{(e.Detail != null ? "  " + e.Detail : "")}");
        }
        foreach (var e in events.Where(e => e.Pid == null && e.Comm == null))
            ctx.Out.Line($"event: {e.Kind}{(e.Path.Length > 0 ? " " + Human.Path(e.Path) : "")}{(e.Detail != null ? "  " + e.Detail : "")}");
        if (kept != null) ctx.Out.Line($"state of the first bad moment kept in {kept}");
    }

    /// <summary>
    /// rm -rf: an exported state holds whatever names the container made, and .NET's Directory.Delete enumerates
    /// names as UTF-16 strings, so it cannot remove a name that is not valid UTF-8 (it left such probes behind).
    /// </summary>
    private static void DeleteTree(string dir)
    {
        if (!Directory.Exists(dir)) return;
        var psi = new ProcessStartInfo("/bin/rm") { UseShellExecute = false };
        psi.ArgumentList.Add("-rf");
        psi.ArgumentList.Add("--");
        psi.ArgumentList.Add(dir);
        using var p = Process.Start(psi);
        p?.WaitForExit();
        if (Directory.Exists(dir)) Console.Error.WriteLine($"diffkeeper: warning: could not remove {dir}");
    }
}
