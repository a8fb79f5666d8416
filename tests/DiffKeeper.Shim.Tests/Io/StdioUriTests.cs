using DiffKeeper.Shim.Io;
using Xunit;

namespace DiffKeeper.Shim.Tests.Io;

/// <summary>stdio destinations as containerd clients pass them: FIFO paths, file://, binary://, or nothing.</summary>
public class StdioUriTests
{
    [Fact]
    public void Empty_means_null()
    {
        Assert.Equal(StdioKind.Null, StdioUri.Parse("").Kind);
        Assert.Equal(StdioKind.Null, StdioUri.Parse(null!).Kind);
    }

    [Fact]
    public void Plain_path_is_a_fifo()
    {
        var uri = StdioUri.Parse("/run/containerd/fifo/123/c1-stdout");
        Assert.Equal(StdioKind.Fifo, uri.Kind);
        Assert.Equal("/run/containerd/fifo/123/c1-stdout", uri.Path);
        Assert.Empty(uri.Query);
    }

    [Fact]
    public void Fifo_scheme_is_a_fifo()
    {
        var uri = StdioUri.Parse("fifo:///tmp/f/out");
        Assert.Equal(StdioKind.Fifo, uri.Kind);
        Assert.Equal("/tmp/f/out", uri.Path);
    }

    [Fact]
    public void File_scheme()
    {
        var uri = StdioUri.Parse("file:///var/log/c1.log");
        Assert.Equal(StdioKind.File, uri.Kind);
        Assert.Equal("/var/log/c1.log", uri.Path);
    }

    [Fact]
    public void Escaped_path_is_unescaped()
    {
        Assert.Equal("/tmp/a b/c.log", StdioUri.Parse("file:///tmp/a%20b/c.log").Path);
    }

    [Fact]
    public void Binary_scheme_with_query()
    {
        var uri = StdioUri.Parse("binary:///usr/local/bin/logger?id=7&name=a%20b&flag");
        Assert.Equal(StdioKind.Binary, uri.Kind);
        Assert.Equal("/usr/local/bin/logger", uri.Path);
        Assert.Equal(
            [new("id", "7"), new("name", "a b"), new("flag", "")],
            uri.Query.ToArray());
    }

    [Fact]
    public void Binary_scheme_without_query()
    {
        var uri = StdioUri.Parse("binary:///bin/logger");
        Assert.Equal(StdioKind.Binary, uri.Kind);
        Assert.Empty(uri.Query);
    }

    [Fact]
    public void Unknown_scheme_is_refused()
    {
        Assert.Throws<ArgumentException>(() => StdioUri.Parse("tcp://host/x"));
    }
}
