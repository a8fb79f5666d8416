using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>
/// Collects every problem a property test finds (rather than stopping at the first) and fails once at the end with
/// the seed, so a run tells the whole story and can be replayed with DIFFKEEPER_TEST_SEED.
/// </summary>
public sealed class Findings(int seed, ITestOutputHelper output)
{
    private readonly List<string> _items = [];
    public int Count => _items.Count;

    public void Add(string where, string what) => _items.Add($"[{where}] {what}");
    public void AddRange(string where, IEnumerable<string> whats) { foreach (var w in whats) Add(where, w); }

    public void ThrowIfAny()
    {
        if (_items.Count == 0) return;
        const int shown = 60;
        var text = $"seed {seed} (replay: DIFFKEEPER_TEST_SEED={seed}): {_items.Count} problem(s)\n" +
                   string.Join("\n", _items.Take(shown)) + (_items.Count > shown ? $"\n… {_items.Count - shown} more" : "");
        output.WriteLine(text);
        throw new Xunit.Sdk.XunitException(text);
    }
}
