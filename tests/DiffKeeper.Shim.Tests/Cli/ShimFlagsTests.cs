using DiffKeeper.Shim.Cli;
using Xunit;

namespace DiffKeeper.Shim.Tests.Cli;

/// <summary>argv as containerd passes it: Go flag syntax, parsing stops at the action.</summary>
public class ShimFlagsTests
{
    [Fact]
    public void Parses_containerd_start_argv()
    {
        var f = ShimFlags.Parse(["-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock",
            "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"]);
        Assert.Equal("k8s.io", f.Namespace);
        Assert.Equal("/run/containerd/containerd.sock", f.Address);
        Assert.Equal("/usr/bin/containerd", f.PublishBinary);
        Assert.Equal("c1", f.Id);
        Assert.True(f.Debug);
        Assert.Equal("start", f.Action);
    }

    [Fact]
    public void Help_flag_in_every_go_spelling_and_not_by_default()
    {
        foreach (var h in new[] { "-h", "--h", "-help", "--help" }) Assert.True(ShimFlags.Parse([h]).Help, h);
        Assert.False(ShimFlags.Parse(["-id", "c1", "start"]).Help);
        foreach (var flag in new[] { "-namespace", "-address", "-publish-binary", "-id", "-bundle", "-socket", "-debug", "-v", "-info", "-h" })
            Assert.Contains("  " + flag + " ", ShimFlags.Usage);
    }

    [Fact]
    public void Parses_delete_argv_with_bundle()
    {
        var f = ShimFlags.Parse(["-namespace", "default", "-address", "/a.sock", "-publish-binary", "/c",
            "-id", "c2", "-bundle", "/run/b/c2", "delete"]);
        Assert.Equal("/run/b/c2", f.Bundle);
        Assert.Equal("delete", f.Action);
        Assert.False(f.Debug);
    }

    [Fact]
    public void Serving_argv_has_no_action()
    {
        var f = ShimFlags.Parse(["-namespace", "ns", "-id", "c3", "-address", "/a.sock"]);
        Assert.Null(f.Action);
        Assert.Equal("c3", f.Id);
    }

    [Fact]
    public void Accepts_equals_form_and_double_dash()
    {
        var f = ShimFlags.Parse(["-namespace=ns1", "--id=c4", "--address", "/x.sock", "-socket=/tmp/s", "start"]);
        Assert.Equal("ns1", f.Namespace);
        Assert.Equal("c4", f.Id);
        Assert.Equal("/x.sock", f.Address);
        Assert.Equal("/tmp/s", f.Socket);
        Assert.Equal("start", f.Action);
    }

    [Fact]
    public void Value_after_equals_may_contain_equals_and_be_empty()
    {
        var f = ShimFlags.Parse(["-id=a=b", "-namespace=", "start"]);
        Assert.Equal("a=b", f.Id);
        Assert.Equal("", f.Namespace);
    }

    [Fact]
    public void Parsing_stops_at_the_first_positional_argument()
    {
        var f = ShimFlags.Parse(["-id", "c5", "start", "-namespace", "late", "-nosuchflag"]);
        Assert.Equal("start", f.Action);
        Assert.Equal("", f.Namespace); // after the action: not a flag any more
    }

    [Fact]
    public void Double_dash_terminator_makes_the_next_argument_the_action()
    {
        var f = ShimFlags.Parse(["-id", "c6", "--", "-weird"]);
        Assert.Equal("-weird", f.Action);
    }

    [Fact]
    public void Boolean_flags_do_not_consume_the_next_argument()
    {
        var f = ShimFlags.Parse(["-debug", "-id", "c7", "delete"]);
        Assert.True(f.Debug);
        Assert.Equal("c7", f.Id);
        Assert.Equal("delete", f.Action);
    }

    [Theory]
    [InlineData("-debug=false", false)]
    [InlineData("-debug=0", false)]
    [InlineData("-debug=true", true)]
    [InlineData("-debug=1", true)]
    [InlineData("-debug", true)]
    public void Boolean_flags_take_go_style_values(string arg, bool expected)
    {
        Assert.Equal(expected, ShimFlags.Parse([arg]).Debug);
    }

    [Fact]
    public void Version_flag()
    {
        Assert.True(ShimFlags.Parse(["-v"]).Version);
        Assert.True(ShimFlags.Parse(["--v"]).Version);
        Assert.False(ShimFlags.Parse(["-id", "x"]).Version);
    }

    [Fact]
    public void Info_flag()
    {
        Assert.True(ShimFlags.Parse(["-info"]).Info);
    }

    [Fact]
    public void Missing_value_is_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => ShimFlags.Parse(["-namespace", "ns", "-id"]));
        Assert.Contains("-id", e.Message);
    }

    [Fact]
    public void Unknown_flag_is_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => ShimFlags.Parse(["-frobnicate", "1", "start"]));
        Assert.Contains("frobnicate", e.Message);
    }

    [Fact]
    public void Lone_dash_is_positional_like_go()
    {
        Assert.Equal("-", ShimFlags.Parse(["-id", "x", "-"]).Action);
    }
}
