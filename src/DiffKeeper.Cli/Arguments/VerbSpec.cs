namespace DiffKeeper.Cli.Arguments;

/// <summary>A verb: its usage line, what it does, its options, examples, and the code that runs it.</summary>
public sealed record VerbSpec(
    string Name, string Usage, string Summary, OptionSpec[] Options, string[] Examples, Func<ParsedArgs, CliContext, int> Run,
    int MinPositionals, int MaxPositionals);
