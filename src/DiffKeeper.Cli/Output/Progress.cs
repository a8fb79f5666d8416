using System.Diagnostics;

namespace DiffKeeper.Cli.Output;

/// <summary>A one-line progress display on stderr, only for a terminal and without -q; at most 10 updates/s.</summary>
public sealed class Progress(bool enabled)
{
    private long _last;
    private bool _shown;

    public bool Enabled => enabled;

    public void Report(Func<string> text)
    {
        if (!enabled) return;
        long now = Stopwatch.GetTimestamp();
        if (_shown && Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds < 100) return;
        _last = now;
        _shown = true;
        Console.Error.Write("\r" + text() + "\x1b[K");
    }

    public void Done()
    {
        if (enabled && _shown) Console.Error.Write("\r\x1b[K");
        _shown = false;
    }
}
