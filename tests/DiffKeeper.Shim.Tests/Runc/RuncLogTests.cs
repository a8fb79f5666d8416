using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Runc;
using Xunit;

namespace DiffKeeper.Shim.Tests.Runc;

/// <summary>runc's error text comes from the last <c>"level":"error"</c> line of its JSON log.</summary>
public class RuncLogTests
{
    private static string? LastError(TempDir dir, string? content)
    {
        var log = dir.Sub("log.json");
        if (content != null) File.WriteAllText(log, content);
        // The reaper is never started: reading the log runs nothing.
        var runc = new RuncCommand(new RuncSettings("runc", dir.Sub("root"), log, false), new Reaper());
        return runc.LastLoggedError();
    }

    [Fact]
    public void Takes_the_last_error_line()
    {
        using var dir = new TempDir("dks-");
        var log = string.Join('\n',
            """{"level":"info","msg":"starting","time":"2026-11-23T23:00:00Z"}""",
            """{"level":"error","msg":"first failure","time":"2026-11-23T23:00:01Z"}""",
            """{"level":"warning","msg":"not this","time":"2026-11-23T23:00:02Z"}""",
            """{"level":"error","msg":"runc run failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH","time":"2026-11-23T23:00:03Z"}""",
            """{"level":"info","msg":"after","time":"2026-11-23T23:00:04Z"}""",
            "");
        Assert.Equal("runc run failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH",
            LastError(dir, log));
    }

    [Fact]
    public void Skips_lines_that_are_not_json()
    {
        using var dir = new TempDir("dks-");
        var log = "{\"level\":\"error\",\"msg\":\"real error\"}\nnot json at all\n{broken json\n\n";
        Assert.Equal("real error", LastError(dir, log));
    }

    [Fact]
    public void Trims_the_message()
    {
        using var dir = new TempDir("dks-");
        Assert.Equal("spaced", LastError(dir, "{\"level\":\"error\",\"msg\":\"  spaced \\n\"}\n"));
    }

    [Fact]
    public void No_error_lines_means_null()
    {
        using var dir = new TempDir("dks-");
        Assert.Null(LastError(dir, "{\"level\":\"info\",\"msg\":\"fine\"}\n"));
    }

    [Fact]
    public void Missing_log_means_null()
    {
        using var dir = new TempDir("dks-");
        Assert.Null(LastError(dir, null));
    }
}
