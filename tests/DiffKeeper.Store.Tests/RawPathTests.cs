using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;
using Xunit;

namespace DiffKeeper.Store.Tests;

public class RawPathTests
{
    [Fact]
    public void Command_line_escapes_round_trip_every_byte_string()
    {
        var rnd = new Random(3);
        for (int i = 0; i < 2000; i++)
        {
            var b = new byte[rnd.Next(0, 12)];
            rnd.NextBytes(b);
            for (int j = 0; j < b.Length; j++) if (b[j] == 0) b[j] = 1;
            Assert.Equal(b, RawPath.EncodeArg(RawPath.DecodeArg(b)));
        }
        Assert.Equal("é", RawPath.DecodeArg("é"u8)); // valid UTF-8 stays readable
    }

    [Fact]
    public void Human_escaping_keeps_one_path_on_one_line()
    {
        Assert.Equal("two\\nlines\\tand\\\\back", RawPath.Escape("two\nlines\tand\\back"u8));
        Assert.Equal("b\\xffd-é", RawPath.Escape([(byte)'b', 0xff, (byte)'d', (byte)'-', 0xc3, 0xa9]));
        Assert.Equal("\\x01", RawPath.Escape([1]));
    }

    [Theory]
    [InlineData("/var/**/*.log", "var/log/app/a.log", true)]
    [InlineData("var/*.log", "var/log/a.log", false)]
    [InlineData("**/a.log", "a.log", true)]
    [InlineData("/etc/pass?d", "etc/passwd", true)]
    [InlineData("etc/*", "etc/x/y", false)]
    public void Glob_segments(string glob, string path, bool match) =>
        Assert.Equal(match, new PathGlob(glob).IsMatch(System.Text.Encoding.UTF8.GetBytes(path)));

    [Fact]
    public void Times_parse_offsets_and_rfc3339_with_nanoseconds()
    {
        Assert.True(Moments.TryParseOffset("2m3s", out var ns));
        Assert.Equal(123 * Moments.NsPerSecond, ns);
        Assert.True(Moments.TryParseOffset("1.5s", out ns));
        Assert.Equal(1_500_000_000, ns);
        Assert.True(Moments.TryParseOffset("250ms", out ns));
        Assert.Equal(250_000_000, ns);
        Assert.False(Moments.TryParseOffset("1.5x", out _));
        Assert.False(Moments.TryParseOffset("-", out _));
        Assert.True(Moments.TryParseRfc3339("2026-01-02T04:04:05.123456789+01:00", out var a));
        Assert.True(Moments.TryParseRfc3339("2026-01-02T03:04:05.123456789Z", out var b));
        Assert.Equal(a, b);
        Assert.Equal("2026-01-02T03:04:05.123456789Z", Moments.Format(b));
        Assert.Equal("1.5s", Moments.FormatOffset(1_500_000_000));
    }
}
