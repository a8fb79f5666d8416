using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Recording;

/// <summary>
/// A containerd whose shims have no recorder daemon at <see cref="DaemonSocket"/> (unless a test puts something
/// there: a hung daemon) and a store of their own at <see cref="Store"/>: every diffkeeper container's exit state
/// must land in <see cref="Spool"/> all the same.
/// </summary>
public sealed class SpoolContainerdFixture : ContainerdFixture
{
    public static readonly TimeSpan RecorderTimeout = TimeSpan.FromMilliseconds(500);

    public string DaemonSocket => Path.Combine(Root, "diffkeeperd.sock");
    public string Store => Path.Combine(Root, "dkstore");
    public string Spool => Path.Combine(Store, "spool");

    protected override IReadOnlyDictionary<string, string> ContainerdEnvironment() => new Dictionary<string, string>
    {
        ["DIFFKEEPER_SOCKET"] = DaemonSocket,
        ["DIFFKEEPER_STORE"] = Store,
        ["DIFFKEEPER_RECORDER_TIMEOUT"] = $"{RecorderTimeout.TotalMilliseconds}ms",
    };
}

[CollectionDefinition(Name)]
public sealed class SpoolContainerdCollection : ICollectionFixture<SpoolContainerdFixture>
{
    public const string Name = "private containerd, recorder daemon absent, private spool";
}
