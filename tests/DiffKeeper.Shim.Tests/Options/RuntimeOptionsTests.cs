using DiffKeeper.Shim.Cli;
using DiffKeeper.Shim.Protos.Bootstrap;
using Extension = DiffKeeper.Shim.Protos.Bootstrap.Extension;
using DiffKeeper.Shim.Runc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using RuncProto = DiffKeeper.Shim.Protos.Runc.Options;
using RuntimeOptionsProto = DiffKeeper.Shim.Protos.RuntimeOptions.Options;

namespace DiffKeeper.Shim.Tests.Options;

/// <summary>
/// The runtime options at <c>start</c> (stdin: legacy Any or 2.3's BootstrapParams) and their two accepted forms
/// (runc Options, runtimeoptions.v1.Options carrying TOML). End-to-end behaviour is in the integration suite.
/// </summary>
public class RuntimeOptionsTests
{
    private static Any RuncAny(RuncProto o) => new() { TypeUrl = "containerd.runc.v1.Options", Value = o.ToByteString() };

    private static Any RuntimeOptionsAny(RuntimeOptionsProto o) =>
        new() { TypeUrl = "runtimeoptions.v1.Options", Value = o.ToByteString() };

    [Fact]
    public void Empty_stdin_means_no_options()
    {
        Assert.Null(RuntimeOptionsInput.Decode([], "c1", "default"));
        Assert.Same(RuncOptions.None, RuncOptions.FromAny(null));
    }

    [Fact]
    public void Legacy_stdin_is_the_options_Any_itself()
    {
        var any = RuncAny(new RuncProto { ShimCgroup = "/x", BinaryName = "crun" });
        var decoded = RuntimeOptionsInput.Decode(any.ToByteArray(), "c1", "default");
        Assert.Equal(any, decoded);
        var o = RuncOptions.FromAny(decoded);
        Assert.Equal("/x", o.ShimCgroup);
        Assert.Equal("crun", o.BinaryName);
    }

    [Fact]
    public void Bootstrap_params_for_this_instance_carry_the_options_in_an_extension()
    {
        var options = RuncAny(new RuncProto { ShimCgroup = "/pods/shim", SystemdCgroup = true });
        var bootstrap = new BootstrapParams { InstanceId = "c1", Namespace = "k8s.io", ContainerdVersion = "2.3.0" };
        bootstrap.Extensions.Add(new Extension { Value = new Any { TypeUrl = "containerd.io/cri.v1.PodSandboxConfig", Value = ByteString.CopyFromUtf8("x") } });
        bootstrap.Extensions.Add(new Extension { Value = options });
        var decoded = RuntimeOptionsInput.Decode(bootstrap.ToByteArray(), "c1", "k8s.io");
        Assert.Equal(options, decoded);
        Assert.True(RuncOptions.FromAny(decoded).SystemdCgroup);
    }

    [Fact]
    public void Bootstrap_params_without_options_mean_none()
    {
        var bootstrap = new BootstrapParams { InstanceId = "c1", Namespace = "default" };
        Assert.Null(RuntimeOptionsInput.Decode(bootstrap.ToByteArray(), "c1", "default"));
    }

    [Fact]
    public void An_Any_whose_fields_do_not_name_this_instance_is_not_taken_for_bootstrap_params()
    {
        // An Any is also a valid BootstrapParams (type_url → instance_id, value → namespace): only id and namespace
        // equal to our flags make it one.
        var any = RuntimeOptionsAny(new RuntimeOptionsProto { ConfigPath = "/etc/dk.toml" });
        Assert.Equal(any, RuntimeOptionsInput.Decode(any.ToByteArray(), "runtimeoptions.v1.Options", "other"));
    }

    [Fact]
    public void Stdin_that_is_not_protobuf_is_an_error()
    {
        var e = Assert.Throws<InvalidRuntimeOptionsException>(() => RuntimeOptionsInput.Decode([0xff, 0xff, 0xff], "c1", "ns"));
        Assert.Contains("cannot decode the options on stdin", e.Message);
    }

    [Fact]
    public void Every_runc_option_is_read_from_the_runc_message()
    {
        var o = RuncOptions.FromAny(RuncAny(new RuncProto
        {
            NoPivotRoot = true, NoNewKeyring = true, ShimCgroup = "/s", IoUid = 1000, IoGid = 1001, BinaryName = "/b",
            Root = "/r", CriuPath = "/c", SystemdCgroup = true, CriuImagePath = "/ci", CriuWorkPath = "/cw",
        }));
        Assert.Equal(new RuncOptions
        {
            NoPivotRoot = true, NoNewKeyring = true, ShimCgroup = "/s", IoUid = 1000, IoGid = 1001, BinaryName = "/b",
            Root = "/r", CriuPath = "/c", SystemdCgroup = true, CriuImagePath = "/ci", CriuWorkPath = "/cw",
        }, o);
    }

    [Fact]
    public void The_same_names_in_an_inline_TOML_body_give_the_same_options()
    {
        // What containerd 1.7+'s CRI sends for `[...runtimes.diffkeeper.options]` without ConfigPath: the whole table.
        var body = """
            BinaryName = "/usr/local/bin/runc-wrapper"
            Root = "/run/dk-runc"
            SystemdCgroup = true
            NoPivotRoot = true
            NoNewKeyring = true
            ShimCgroup = "/dk/shims"
            IoUid = 1000
            IoGid = 1001
            CriuPath = "/usr/sbin/criu"
            CriuImagePath = "/var/lib/criu/img"
            CriuWorkPath = "/var/lib/criu/work"
            TypeUrl = ""
            """;
        var o = RuncOptions.FromAny(RuntimeOptionsAny(new RuntimeOptionsProto { ConfigBody = ByteString.CopyFromUtf8(body) }));
        Assert.Equal(new RuncOptions
        {
            BinaryName = "/usr/local/bin/runc-wrapper", Root = "/run/dk-runc", SystemdCgroup = true, NoPivotRoot = true,
            NoNewKeyring = true, ShimCgroup = "/dk/shims", IoUid = 1000, IoGid = 1001, CriuPath = "/usr/sbin/criu",
            CriuImagePath = "/var/lib/criu/img", CriuWorkPath = "/var/lib/criu/work",
        }, o);
    }

    [Fact]
    public void Names_match_case_insensitively_like_Go_struct_fields()
    {
        var o = RuncOptionsToml.Parse("systemdcgroup = true\nbinaryname = \"x\"", "t");
        Assert.True(o.SystemdCgroup);
        Assert.Equal("x", o.BinaryName);
    }

    [Fact]
    public void Config_path_is_read_and_wins_over_the_body()
    {
        using var dir = new TempDir("dks-");
        var file = dir.Sub("runc.toml");
        File.WriteAllText(file, "SystemdCgroup = true\n# a comment\nBinaryName = \"/opt/runc\"\n");
        var o = RuncOptions.FromAny(RuntimeOptionsAny(new RuntimeOptionsProto
        {
            ConfigPath = file, ConfigBody = ByteString.CopyFromUtf8("BinaryName = \"ignored\""),
        }));
        Assert.True(o.SystemdCgroup);
        Assert.Equal("/opt/runc", o.BinaryName);
    }

    [Fact]
    public void A_missing_config_file_is_an_error_naming_it()
    {
        var e = Assert.Throws<InvalidRuntimeOptionsException>(() =>
            RuncOptions.FromAny(RuntimeOptionsAny(new RuntimeOptionsProto { ConfigPath = "/nonexistent/dk-runc.toml" })));
        Assert.Contains("/nonexistent/dk-runc.toml", e.Message);
    }

    [Fact]
    public void A_relative_config_path_is_refused()
    {
        var e = Assert.Throws<InvalidRuntimeOptionsException>(() =>
            RuncOptions.FromAny(RuntimeOptionsAny(new RuntimeOptionsProto { ConfigPath = "runc.toml" })));
        Assert.Contains("not absolute", e.Message);
    }

    [Theory]
    [InlineData("SystemdCgroup = \"true\"", "SystemdCgroup must be a boolean")]
    [InlineData("IoUid = -1", "IoUid must be an integer")]
    [InlineData("IoGid = 4294967296", "IoGid must be an integer")]
    [InlineData("BinaryName = 3", "BinaryName must be a string")]
    [InlineData("SystemdCgroup = ", "t.toml")]
    [InlineData("BinaryName = { path = \"/x\" }", "BinaryName must be a string, not a table")]
    [InlineData("BinaryName = [\"/x\"]", "BinaryName must be a string, not an array")]
    [InlineData("Root = 1979-05-27", "Root must be a string, not a date/time")]
    [InlineData("NoPivotRoot = 1", "NoPivotRoot must be a boolean, not 1")]
    [InlineData("IoUid = 1.5", "IoUid must be an integer")]
    public void Wrong_types_and_bad_TOML_are_errors(string toml, string expected)
    {
        var e = Assert.Throws<InvalidRuntimeOptionsException>(() => RuncOptionsToml.Parse(toml, "t.toml"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Unknown_keys_and_unknown_message_types_are_ignored()
    {
        Assert.Equal(RuncOptions.None, RuncOptionsToml.Parse("ConfigPath = \"\"\n[extra]\nx = 1", "t"));
        // Only top-level keys are options: the same names inside a table or dotted key are not.
        Assert.Equal(RuncOptions.None, RuncOptionsToml.Parse("[nested]\nSystemdCgroup = \"not a bool\"\nBinaryName = 3", "t"));
        Assert.Equal(RuncOptions.None, RuncOptionsToml.Parse("a.SystemdCgroup = 7\nt = { BinaryName = 1 }\nl = [{ Root = 2 }]", "t"));
        // …and a top-level key after a table header belongs to that table (TOML), so it is not an option either.
        Assert.True(RuncOptionsToml.Parse("SystemdCgroup = true\n[x]\ny = 1", "t").SystemdCgroup);
        Assert.Same(RuncOptions.None, RuncOptions.FromAny(new Any { TypeUrl = "example.com/other.Options", Value = ByteString.CopyFromUtf8("zz") }));
    }

    [Fact]
    public void Settings_carry_the_options_to_runc_and_the_stdio_pipes()
    {
        var s = RuncSettings.For("/b", "k8s.io", new RuncOptions { BinaryName = "/w", Root = "/r", SystemdCgroup = true, CriuPath = "/c", IoUid = 7, IoGid = 8 });
        Assert.Equal(("/w", "/r/k8s.io", "/b/log.json", true, "/c", 7u, 8u), (s.Binary, s.Root, s.LogPath, s.SystemdCgroup, s.CriuPath, s.IoUid, s.IoGid));
        var d = RuncSettings.For("/b", "default", RuncOptions.None);
        Assert.Equal(("runc", "/run/containerd/runc/default", false, ""), (d.Binary, d.Root, d.SystemdCgroup, d.CriuPath));
    }
}
