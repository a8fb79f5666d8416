using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Query;

/// <summary>One row of a timeline: a captured version, a change or lifecycle event, or a gap.</summary>
public sealed class TimelineRow
{
    public long Time;
    public string Kind = "";
    public byte[] Path = [];
    public FileVersion? Version;
    public RecordedEvent? Event;
}

public static class TimelineQuery
{
    /// <summary>Versions and events of a recording with from &lt;= time &lt;= to, in time order.</summary>
    public static List<TimelineRow> Rows(RecordingStore store, ulong rec, long from, long to, PathGlob? glob)
    {
        var rows = new List<TimelineRow>();
        foreach (var v in store.ReadVersions(rec))
        {
            if (v.Time < from || v.Time > to) continue;
            if (glob != null && !glob.IsMatch(v.Path)) continue;
            string kind = v.Type switch
            {
                EntryType.Whiteout => "whiteout",
                EntryType.Absent => "delete",
                _ => v.ReplacesBelow ? "opaque" : "version",
            };
            rows.Add(new TimelineRow { Time = v.Time, Kind = kind, Path = v.Path, Version = v });
        }
        foreach (var e in store.ReadEvents(rec, from, to))
        {
            // Lifecycle events and recording-wide gaps have no path: a path filter leaves them out.
            if (glob != null && (e.Path.Length == 0 || !(glob.IsMatch(e.Path) || (e.ToPath.Length > 0 && glob.IsMatch(e.ToPath))))) continue;
            rows.Add(new TimelineRow { Time = e.Time, Kind = e.Kind, Path = e.Path, Event = e });
        }
        // Stable: at one moment, events (which explain) come before the versions they caused, in path order.
        rows.Sort(static (a, b) =>
        {
            int c = a.Time.CompareTo(b.Time);
            if (c != 0) return c;
            c = (a.Version == null ? 0 : 1).CompareTo(b.Version == null ? 0 : 1);
            if (c != 0) return c;
            if (a.Event != null && b.Event != null) return a.Event.Seq.CompareTo(b.Event.Seq);
            return RecordingState.ComparePaths(a.Path, b.Path);
        });
        return rows;
    }
}
