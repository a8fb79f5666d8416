using System.Globalization;
using System.Text;

namespace DiffKeeper.Store;

/// <summary>
/// Times are nanoseconds since the Unix epoch (UTC). Users write them as an offset from a recording's start
/// ("1.5s", "250ms", "2m3s", "1h"), an RFC 3339 time with up to nanosecond precision, "start" or "end".
/// </summary>
public static class Moments
{
    public const long NsPerSecond = 1_000_000_000L;

    public static long Now()
    {
        var t = DateTime.UtcNow;
        return (t.Ticks - DateTime.UnixEpoch.Ticks) * 100;
    }

    /// <summary>Parses an offset such as "1.5s", "250ms", "2m3s", "1h", "0" (ns).</summary>
    public static bool TryParseOffset(string s, out long ns)
    {
        ns = 0;
        if (string.IsNullOrEmpty(s)) return false;
        if (s == "0") return true;
        int i = 0;
        bool any = false;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            if (i == start) return false;
            if (!decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var num)) return false;
            int ustart = i;
            while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
            long unit = s.AsSpan(ustart, i - ustart) switch
            {
                "ns" => 1L,
                "us" or "µs" => 1_000L,
                "ms" => 1_000_000L,
                "s" => NsPerSecond,
                "m" => 60 * NsPerSecond,
                "h" => 3600 * NsPerSecond,
                "d" => 86400 * NsPerSecond,
                _ => 0,
            };
            if (unit == 0) return false;
            try { ns = checked(ns + (long)decimal.Round(num * unit)); }
            catch (OverflowException) { return false; }
            any = true;
        }
        return any;
    }

    /// <summary>Parses RFC 3339: 2026-11-23T10:00:00.123456789Z or with a ±hh:mm offset.</summary>
    public static bool TryParseRfc3339(string s, out long ns)
    {
        ns = 0;
        if (s.Length < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) return false;
        int zone = s.Length - 1;
        long offsetNs = 0;
        if (s[^1] is 'Z' or 'z') zone = s.Length - 1;
        else if (s.Length >= 25 && (s[^6] == '+' || s[^6] == '-') && s[^3] == ':')
        {
            zone = s.Length - 6;
            if (!int.TryParse(s.AsSpan(s.Length - 5, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var oh) ||
                !int.TryParse(s.AsSpan(s.Length - 2, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var om)) return false;
            offsetNs = (oh * 3600L + om * 60L) * NsPerSecond * (s[^6] == '-' ? -1 : 1);
        }
        else return false;
        var main = s[..zone];
        long frac = 0;
        int dot = main.IndexOf('.');
        if (dot >= 0)
        {
            var f = main[(dot + 1)..];
            if (f.Length == 0 || f.Length > 9 || !f.All(char.IsAsciiDigit)) return false;
            frac = long.Parse(f.PadRight(9, '0'), CultureInfo.InvariantCulture);
            main = main[..dot];
        }
        if (!DateTime.TryParseExact(main.Replace('t', 'T').Replace(' ', 'T'), "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var dt)) return false;
        ns = (dt.Ticks - DateTime.UnixEpoch.Ticks) * 100 + frac - offsetNs;
        return true;
    }

    /// <summary>RFC 3339 in UTC with nanoseconds: 2026-11-23T10:00:00.123456789Z.</summary>
    public static string Format(long ns)
    {
        long secs = Math.DivRem(ns, NsPerSecond, out long frac);
        if (frac < 0) { frac += NsPerSecond; secs--; }
        var dt = DateTime.UnixEpoch.AddSeconds(secs);
        return dt.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + "." + frac.ToString("D9", CultureInfo.InvariantCulture) + "Z";
    }

    /// <summary>An offset as seconds with the shortest exact decimals: "0s", "1.5s", "0.25s", "-2s".</summary>
    public static string FormatOffset(long ns)
    {
        var sb = new StringBuilder();
        if (ns < 0) { sb.Append('-'); ns = -ns; }
        sb.Append(ns / NsPerSecond);
        long frac = ns % NsPerSecond;
        if (frac != 0) sb.Append('.').Append(frac.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0'));
        return sb.Append('s').ToString();
    }
}
