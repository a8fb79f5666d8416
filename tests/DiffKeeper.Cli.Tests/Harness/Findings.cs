using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>
/// Collects every problem a property test finds (rather than stopping at the first) and fails once at the end with
/// the seed, so a run tells the whole story and can be replayed with DIFFKEEPER_TEST_SEED.
/// </summary>
public sealed class Findings(int seed, ITestOutputHelper output)
{
    private readonly record struct Item(string Where, string What)
    {
        /// <summary>"export" + "mtime" for ("export 3s", "mtime: /a ..."): what the per-kind summary counts.</summary>
        public string Kind => Where.Split(' ')[0] + " " + (What.IndexOf(':') is > 0 and var i and < 20 ? What[..i] : "failed");
        public override string ToString() => $"[{Where}] {What}";
    }

    private readonly List<Item> _items = [];
    public int Count => _items.Count;

    public void Add(string where, string what) => _items.Add(new Item(where, what));
    public void AddRange(string where, IEnumerable<string> whats) { foreach (var w in whats) Add(where, w); }

    public void ThrowIfAny()
    {
        if (_items.Count == 0) return;
        var byKind = _items.GroupBy(i => i.Kind).ToList();
        var text = $"seed {seed} (replay: DIFFKEEPER_TEST_SEED={seed}): {_items.Count} problem(s): " +
                   string.Join(", ", byKind.Select(g => $"{g.Count()} x {g.Key}")) + "\n" +
                   string.Join("\n", byKind.SelectMany(g => g.Take(5)));
        output.WriteLine(text);
        throw new Xunit.Sdk.XunitException(text);
    }
}
