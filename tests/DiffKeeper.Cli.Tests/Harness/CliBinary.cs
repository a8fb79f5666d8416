using Xunit;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>
/// The `diffkeeper` binary under test: $DIFFKEEPER_BIN_DIR/diffkeeper (what `make test` passes), else
/// src/DiffKeeper.Cli published once for the whole test run (<see cref="Binaries.LocateOrPublishAsync"/>).
/// </summary>
public sealed class CliBinary
{
    private readonly (string? Path, string? Problem) _located =
        Binaries.LocateOrPublishAsync(Binaries.Cli, "src/DiffKeeper.Cli").GetAwaiter().GetResult();

    /// <summary>The binary's path; fails the calling test (with the reason) when there is none.</summary>
    public string Executable => _located.Path ?? throw new Xunit.Sdk.XunitException(_located.Problem);
}

/// <summary>All CLI tests share one binary and run one after another (2 cores; the crash test is heavy).</summary>
[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliBinary>
{
    public const string Name = "diffkeeper CLI";
}
