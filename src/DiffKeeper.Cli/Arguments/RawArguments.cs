using DiffKeeper.Store.Model;

namespace DiffKeeper.Cli.Arguments;

/// <summary>
/// The runtime decodes argv as UTF-8 and replaces invalid bytes, so a path argument with a non-UTF-8 name would
/// arrive damaged. We re-read the exact bytes from /proc/self/cmdline and keep invalid bytes as escapes
/// (<see cref="RawPath.DecodeArg"/>), so `show REC $'/b\xffd'` finds the file named b\xffd.
/// </summary>
public static class RawArguments
{
    public static string[] Recover(string[] args)
    {
        if (args.Length == 0 || !args.Any(a => a.Contains('\uFFFD'))) return args;
        byte[] cmdline;
        try { cmdline = File.ReadAllBytes("/proc/self/cmdline"); }
        catch (IOException) { return args; }
        catch (UnauthorizedAccessException) { return args; }
        var parts = new List<byte[]>();
        int start = 0;
        for (int i = 0; i < cmdline.Length; i++)
        {
            if (cmdline[i] != 0) continue;
            parts.Add(cmdline[start..i]);
            start = i + 1;
        }
        if (parts.Count < args.Length) return args;
        // Main's args are the trailing entries (argv[0], and "dotnet x.dll" when run that way, come first).
        var raw = parts.Skip(parts.Count - args.Length).Select(b => RawPath.DecodeArg(b)).ToArray();
        for (int i = 0; i < args.Length; i++)
        {
            // Sanity: the same argument, apart from the replaced bytes.
            if (raw[i].Length < args[i].Replace("\uFFFD", "").Length) return args;
        }
        return raw;
    }
}
