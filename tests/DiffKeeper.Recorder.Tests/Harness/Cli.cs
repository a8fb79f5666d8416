using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>The real `diffkeeper` CLI reading the daemon's store (read-only, beside the live writer).</summary>
public sealed class Cli(DaemonBinaries bins, string store)
{
    public (int Code, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(bins.Cli, ["--store", store, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new Xunit.Sdk.XunitException($"diffkeeper {string.Join(' ', args)} hung"); }
        return (p.ExitCode, o.Result, e.Result);
    }

    public string Ok(params string[] args)
    {
        var (code, o, e) = Run(args);
        if (code != 0) throw new Xunit.Sdk.XunitException($"diffkeeper {string.Join(' ', args)} failed (exit {code}): {e}{o}");
        return o;
    }

    public List<JsonElement> Json(params string[] args) =>
        Ok([.. args, "--json"]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    public List<JsonElement> Recordings() => Json("ls");

    public List<TimelineRow> Timeline(string rec) =>
        Json("timeline", rec).Select(r => new TimelineRow(
            ParseTime(r.GetProperty("time").GetString()!), r.GetProperty("kind").GetString()!,
            r.GetProperty("path").ValueKind == JsonValueKind.String ? r.GetProperty("path").GetString()! : "",
            r.GetProperty("pid").ValueKind == JsonValueKind.Number ? r.GetProperty("pid").GetInt32() : null,
            r.GetProperty("comm").ValueKind == JsonValueKind.String ? r.GetProperty("comm").GetString() : null,
            r.GetProperty("detail").ValueKind == JsonValueKind.String ? r.GetProperty("detail").GetString() : null)).ToList();

    public void Export(string rec, string at, string outDir) => Ok("export", rec, "--at", at, "--out", outDir, "-q");

    /// <summary>RFC 3339 with nanoseconds, as the CLI prints and accepts.</summary>
    public static long ParseTime(string s)
    {
        int dot = s.IndexOf('.');
        long frac = 0;
        string rest = s;
        if (dot > 0)
        {
            int end = dot + 1;
            while (end < s.Length && char.IsAsciiDigit(s[end])) end++;
            frac = long.Parse(s[(dot + 1)..end].PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
            rest = s[..dot] + s[end..];
        }
        var t = DateTimeOffset.Parse(rest, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        return (t.UtcTicks - DateTime.UnixEpoch.Ticks) * 100 + frac;
    }

    public static string FormatTime(long ns)
    {
        var t = DateTime.UnixEpoch.AddTicks(ns / 100);
        return t.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + "." + (ns % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture) + "Z";
    }

    public static long NowNs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
}

public sealed record TimelineRow(long Time, string Kind, string Path, int? Pid, string? Comm, string? Detail)
{
    public override string ToString() => $"{Cli.FormatTime(Time)} {Kind} {Path} pid={Pid} comm={Comm} {Detail}";
}
