using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Trees;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Scenarios;

/// <summary>
/// Checks the tests' own model against the kernel before it is used to judge diffkeeper: the per-step upper layers
/// stacked in a real overlayfs mount must show exactly the state the model predicts (whiteouts, opaque directories,
/// copied-up parents and all). Needs no diffkeeper binary.
/// </summary>
public sealed class HistoryModelTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData(11)]
    [InlineData(12)]
    public void StackedUpperLayersInAKernelOverlay_ShowTheModelledState(int seedBase)
    {
        Env.RequireRoot();
        Env.Require(File.ReadAllText("/proc/filesystems").Contains("overlay"), "overlayfs not available");
        int seed = Env.Seed(seedBase);
        var findings = new Findings(seed, output);
        using var tmp = new TempDir();
        var moments = new History(seed).Generate(8);
        var layers = new List<string>();
        foreach (var m in moments)
        {
            var upper = tmp.Sub($"upper-{m.Index}");
            Directory.CreateDirectory(upper);
            UpperLayer.Write(upper, m.State, m.Changes);
            layers.Insert(0, upper);
            using var overlay = new Overlay(layers, tmp.Sub($"merged-{m.Index}"));
            var seen = TreeReader.Read(overlay.MountPoint);
            findings.AddRange($"moment {m.Index}", TreeComparer.Differences(m.State, seen));
            output.WriteLine($"moment {m.Index}: {m.State.Entries.Count} entries; {string.Join("; ", m.Log)}");
        }
        findings.ThrowIfAny();
    }
}
