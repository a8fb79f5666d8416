namespace DiffKeeper.Cli.Arguments;

/// <summary>
/// A verb: its usage line, what it does, its options, examples, and the code that runs it. Help, `help VERB`, the
/// shell completions and the man page are all generated from these (Arguments/HelpText, Completions, ManPage), so a
/// verb added to the table gets them without more code. <paramref name="Hidden"/> verbs (the completion helper) are
/// left out of all of them.
/// </summary>
public sealed record VerbSpec(
    string Name, string Usage, string Summary, OptionSpec[] Options, string[] Examples, Func<ParsedArgs, CliContext, int> Run,
    int MinPositionals, int MaxPositionals, bool Hidden = false)
{
    /// <summary>
    /// The positional arguments as the usage line names them: the words after "diffkeeper VERB" up to the first
    /// option or bracket (`show REC PATH [--at T]` → REC, PATH; `setup containerd …` → the literal "containerd").
    /// </summary>
    public IReadOnlyList<string> Arguments
    {
        get
        {
            var words = Usage.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var list = new List<string>();
            for (int i = 2; i < words.Length; i++)
            {
                var w = words[i];
                // "[COMMAND]": an optional positional (help); "[--x …]" and "(or …)" end the arguments.
                if (w.Length > 2 && w[0] == '[' && w[^1] == ']' && char.IsUpper(w[1])) { list.Add(w[1..^1]); continue; }
                if (w.StartsWith('-') || w.StartsWith('[') || w.StartsWith('(')) break;
                list.Add(w);
            }
            return list;
        }
    }

    /// <summary>How a shell completes the positional argument at <paramref name="index"/> (0-based).</summary>
    public ValueKind ArgumentKind(int index)
    {
        if (index >= Arguments.Count) return ValueKind.None;
        // After a REC, PATH is a path inside the recording (show), not a file of this machine.
        if (Arguments[index] == "PATH" && Arguments.Take(index).Contains("REC")) return ValueKind.None;
        return OptionSpec.KindOf(Arguments[index]);
    }

    /// <summary>The words a Literal or Command argument completes to.</summary>
    public IReadOnlyList<string> Words(int index, IEnumerable<VerbSpec> verbs) => ArgumentKind(index) switch
    {
        ValueKind.Literal => Arguments[index].Split('|'),
        ValueKind.Command => verbs.Where(v => !v.Hidden).Select(v => v.Name).ToList(),
        _ => [],
    };
}

/// <summary>
/// What a shell offers for a value: nothing, file names, directory names, recordings, the words of the placeholder
/// itself ("containerd", "bash|zsh|fish"), or the verbs (COMMAND).
/// </summary>
public enum ValueKind { None, File, Directory, Recording, Literal, Command }
