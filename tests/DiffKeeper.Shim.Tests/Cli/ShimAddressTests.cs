using System.Security.Cryptography;
using System.Text;
using DiffKeeper.Shim.Cli;
using DiffKeeper.Shim.Service;
using Xunit;

namespace DiffKeeper.Shim.Tests.Cli;

/// <summary>The socket address containerd expects and the grouping annotations that choose it.</summary>
public class ShimAddressTests
{
    private static string Expected(string address, string ns, string group) =>
        "unix:///run/containerd/s/" +
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{address}/{ns}/{group}")));

    [Theory]
    [InlineData("/run/containerd/containerd.sock", "default", "c1")]
    [InlineData("/run/containerd/containerd.sock", "k8s.io", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("/tmp/x/fake.sock", "dk-hostile-1", "id with spaces/and/slashes")]
    [InlineData("/tmp/ü.sock", "ns", "ünïcode")]
    public void Address_is_sha256_of_address_namespace_group(string address, string ns, string group)
    {
        var actual = ShimAddress.For(address, ns, group);
        Assert.Equal(Expected(address, ns, group), actual);
        Assert.Equal(64, actual.Length - "unix:///run/containerd/s/".Length);
    }

    [Fact]
    public void Socket_path_strips_the_scheme()
    {
        Assert.Equal("/run/containerd/s/ab", ShimAddress.SocketPath("unix:///run/containerd/s/ab"));
        Assert.Equal("/plain", ShimAddress.SocketPath("/plain"));
    }

    [Fact]
    public void Group_is_the_id_without_a_config()
    {
        using var bundle = new TempDir("dks-");
        Assert.Equal("c1", ShimAddress.GroupId("c1", OciSpec.Load(bundle.Path)));
    }

    [Fact]
    public void Group_is_the_id_without_grouping_annotations()
    {
        using var bundle = WithConfig("""{"ociVersion":"1.0.2","annotations":{"other":"x"}}""");
        Assert.Equal("c1", ShimAddress.GroupId("c1", OciSpec.Load(bundle.Path)));
    }

    [Fact]
    public void Sandbox_id_groups_cri_containers()
    {
        using var bundle = WithConfig("""{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1"}}""");
        Assert.Equal("sb1", ShimAddress.GroupId("c1", OciSpec.Load(bundle.Path)));
    }

    [Fact]
    public void Runc_group_annotation_wins_over_sandbox_id()
    {
        using var bundle = WithConfig(
            """{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1","io.containerd.runc.v2.group":"g1"}}""");
        var group = ShimAddress.GroupId("c1", OciSpec.Load(bundle.Path));
        Assert.Equal("g1", group);
        Assert.Equal(Expected("/a", "ns", "g1"), ShimAddress.For("/a", "ns", group));
    }

    [Fact]
    public void Non_string_annotations_are_ignored()
    {
        using var bundle = WithConfig("""{"annotations":{"io.containerd.runc.v2.group":42}}""");
        Assert.Equal("c1", ShimAddress.GroupId("c1", OciSpec.Load(bundle.Path)));
    }

    private static TempDir WithConfig(string json)
    {
        var dir = new TempDir("dks-");
        File.WriteAllText(dir.Sub("config.json"), json);
        return dir;
    }
}
