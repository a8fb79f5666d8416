using System.Text;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// The container's process as the daemon recorded it: the detail of the recording's `create` event, one
/// "key: value" line per fact (src/DiffKeeper.Recorder/Tracking/ContainerIdentity.Describe): args (shell-quoted),
/// cwd, user uid:gid, env NAMES (never values: they may hold secrets), terminal.
/// </summary>
public sealed record RecordedProcess(IReadOnlyList<string> Args, string? Cwd, (uint Uid, uint Gid)? User, IReadOnlyList<string> EnvNames, bool Terminal)
{
    public static RecordedProcess? Of(RecordingStore store, RecordingInfo rec)
    {
        var create = store.ReadEvents(rec.Id).FirstOrDefault(e => e.Kind == EventKinds.Create && e.Detail is { Length: > 0 });
        return create is null ? null : Parse(create.Detail!);
    }

    public static RecordedProcess? Parse(string detail)
    {
        List<string>? args = null;
        string? cwd = null;
        (uint, uint)? user = null;
        var env = new List<string>();
        bool terminal = false;
        foreach (var line in detail.Split('\n'))
        {
            int colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon < 0) continue;
            var (key, value) = (line[..colon], line[(colon + 2)..]);
            switch (key)
            {
                case "args": args = Unquote(value); break;
                case "cwd": cwd = value.Length > 0 ? value : null; break;
                case "user":
                    var p = value.Split(':');
                    if (p.Length == 2 && uint.TryParse(p[0], out var u) && uint.TryParse(p[1], out var g)) user = (u, g);
                    break;
                case "env": env.AddRange(value.Split(' ', StringSplitOptions.RemoveEmptyEntries)); break;
                case "terminal": terminal = value == "true"; break;
            }
        }
        return args is { Count: > 0 } ? new RecordedProcess(args, cwd, user, env, terminal) : null;
    }

    /// <summary>Splits words as Describe quoted them: bare words, or '…' with ' written as '\''.</summary>
    public static List<string> Unquote(string s)
    {
        var words = new List<string>();
        var w = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '\'')
            {
                inWord = true;
                int end = s.IndexOf('\'', i + 1);
                if (end < 0) throw new CorruptDataException($"the recorded args have an unclosed quote: {s}");
                w.Append(s, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '\\' && i + 1 < s.Length) { w.Append(s[++i]); inWord = true; }
            else if (c == ' ')
            {
                if (inWord) { words.Add(w.ToString()); w.Clear(); inWord = false; }
            }
            else { w.Append(c); inWord = true; }
        }
        if (inWord) words.Add(w.ToString());
        return words;
    }
}
