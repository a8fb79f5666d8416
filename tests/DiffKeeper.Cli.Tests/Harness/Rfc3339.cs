using System.Globalization;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>RFC 3339 with up to nanosecond fractions (DateTimeOffset stops at 100 ns).</summary>
public static class Rfc3339
{
    public static bool TryParseNs(string s, out long unixNs)
    {
        unixNs = 0;
        int t = s.IndexOf('T');
        if (t < 0) return false;
        int zone = s.IndexOfAny(['Z', 'z', '+', '-'], t);
        if (zone < 0) return false;
        string main = s[..zone], offset = s[zone..];
        long fracNs = 0;
        int dot = main.IndexOf('.');
        if (dot >= 0)
        {
            string frac = main[(dot + 1)..];
            if (frac.Length is 0 or > 9 || !frac.All(char.IsAsciiDigit)) return false;
            fracNs = long.Parse(frac.PadRight(9, '0'), CultureInfo.InvariantCulture);
            main = main[..dot];
        }
        if (!DateTimeOffset.TryParseExact(main + (offset is "Z" or "z" ? "+00:00" : offset), "yyyy-MM-dd'T'HH:mm:sszzz",
                CultureInfo.InvariantCulture, DateTimeStyles.None, out var dto)) return false;
        unixNs = dto.ToUnixTimeSeconds() * 1_000_000_000L + fracNs;
        return true;
    }

    public static string Format(long unixNs)
    {
        var sec = Math.DivRem(unixNs, 1_000_000_000L, out long ns);
        return DateTimeOffset.FromUnixTimeSeconds(sec).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + $".{ns:D9}Z";
    }
}
