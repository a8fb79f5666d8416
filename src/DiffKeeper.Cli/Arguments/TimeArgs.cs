using DiffKeeper.Store;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli.Arguments;

/// <summary>Turns a user's time (offset, RFC 3339, start, end) into a moment of a recording.</summary>
public static class TimeArgs
{
    /// <summary>A moment inside the recording; outside it is "not found" (exit 3).</summary>
    public static long Moment(string text, RecordingInfo rec, string option)
    {
        long t = Parse(text, rec.Start, rec.End, option);
        if (t < rec.Start || t > rec.End)
            throw new NotFoundException($"{option} {text} is outside the recording ({Moments.Format(rec.Start)} .. {Moments.Format(rec.End)})");
        return t;
    }

    public static long Parse(string text, long start, long end, string option)
    {
        if (text == "start") return start;
        if (text == "end") return end;
        if (Moments.TryParseOffset(text, out var off)) return start + off;
        if (Moments.TryParseRfc3339(text, out var abs)) return abs;
        throw new UsageException($"bad time for {option}: '{text}' (use an offset like 1.5s, 250ms, 2m3s, an RFC 3339 time, start or end)");
    }
}
