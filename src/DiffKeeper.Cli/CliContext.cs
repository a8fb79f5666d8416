using DiffKeeper.Cli.Output;
using DiffKeeper.Cli.Arguments;

namespace DiffKeeper.Cli;

/// <summary>What every verb needs: where the store is, how to print, whether to show progress.</summary>
public sealed class CliContext(ParsedArgs args, Stream stdout)
{
    public ParsedArgs Args { get; } = args;
    public Stream Stdout { get; } = stdout;
    public OutputWriter Out { get; } = new(stdout);

    public string StoreDir =>
        Args.Value("store") ?? (Environment.GetEnvironmentVariable("DIFFKEEPER_STORE") is { Length: > 0 } env ? env : "/var/lib/diffkeeper");

    public Progress Progress => new(!Args.Quiet && !Console.IsErrorRedirected);
}
