using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Recording;

/// <summary>
/// A containerd of its own whose environment turns on the shim's diagnostic recorder hook
/// (<c>DIFFKEEPER_SHIM_HOOK_LOG</c>): every shim it starts, and every <c>delete</c> subcommand, appends a JSON line per
/// hook call to <see cref="HookLogPath"/>. Kept apart so the conformance tests run the shim exactly as shipped.
/// </summary>
public sealed class HookLogContainerdFixture : ContainerdFixture
{
    public const string HookLogVariable = "DIFFKEEPER_SHIM_HOOK_LOG";

    public string HookLogPath => Path.Combine(Root, "recorder-hook.jsonl");

    protected override IReadOnlyDictionary<string, string> ContainerdEnvironment() =>
        new Dictionary<string, string> { [HookLogVariable] = HookLogPath };
}

[CollectionDefinition(Name)]
public sealed class HookLogContainerdCollection : ICollectionFixture<HookLogContainerdFixture>
{
    public const string Name = "private containerd with the recorder hook log";
}
