using System.Diagnostics;
using System.Text.Json;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Cli.Tests.Conventions;

/// <summary>
/// The CLI's conventions over the whole verb table (read from the binary with `__complete spec`): every verb
/// answers --help, -h and `help VERB` alike, with every option of its spec; unknown options name the verb and the
/// closest option; the completion scripts really load in bash, zsh and fish and complete verbs, options, files and
/// recordings; the man pages render with man -l.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class HelpAndCompletionTests(CliBinary binary, ITestOutputHelper output) : CliTestBase(binary, output)
{
    private sealed record Opt(string Name, string? Short, bool TakesValue, bool Global, string Completion);
    private sealed record Verb(string Name, string Usage, List<Opt> Options, List<(string Name, string Completion)> Arguments, int Examples);

    private List<Verb> Spec()
    {
        var lines = Cli.RunRaw(["__complete", "spec"]).ExpectOk().JsonLines();
        var verbs = lines.Select(l => new Verb(
            l.GetProperty("verb").GetString()!, l.GetProperty("usage").GetString()!,
            l.GetProperty("options").EnumerateArray().Select(o => new Opt(
                o.GetProperty("name").GetString()!, o.GetProperty("short").ValueKind == JsonValueKind.String ? o.GetProperty("short").GetString() : null,
                o.GetProperty("takes_value").GetBoolean(), o.GetProperty("global").GetBoolean(), o.GetProperty("completion").GetString()!)).ToList(),
            l.GetProperty("arguments").EnumerateArray().Select(a => (a.GetProperty("name").GetString()!, a.GetProperty("completion").GetString()!)).ToList(),
            l.GetProperty("examples").GetInt32())).ToList();
        // The table is the one the rest of the suite uses: a spec that lost verbs would make these tests vacuous.
        foreach (var known in new[] { "ls", "timeline", "show", "diff", "export", "snapshot", "gc", "doctor", "setup", "help", "completion", "man" })
            Assert.Contains(verbs, v => v.Name == known);
        Assert.DoesNotContain(verbs, v => v.Name.StartsWith("__", StringComparison.Ordinal));
        return verbs;
    }

    [Fact]
    public void Every_verb_answers_help_the_same_three_ways_with_every_option()
    {
        var verbs = Spec();
        var general = Cli.RunRaw(["--help"]).ExpectOk().StdoutText;
        Assert.Equal(general, Cli.RunRaw(["help"]).ExpectOk().StdoutText);
        Assert.Contains("exit codes:", general);
        foreach (var v in verbs) Assert.Contains("\n  " + v.Name + " ", general);
        // No command at all: the help on stderr, usage exit.
        Assert.Contains("commands:", Cli.RunRaw([]).ExpectExit(2).Stderr);

        foreach (var v in verbs)
        {
            var help = Cli.RunRaw([v.Name, "--help"]).ExpectOk().StdoutText;
            Assert.Equal(help, Cli.RunRaw([v.Name, "-h"]).ExpectOk().StdoutText);
            Assert.Equal(help, Cli.RunRaw(["help", v.Name]).ExpectOk().StdoutText);
            Assert.StartsWith("usage: " + v.Usage + "\n\n", help);
            var summary = help.Split('\n')[2];
            Assert.True(summary.Length > 10, $"{v.Name}: no one-line description after the usage:\n{help}");
            Assert.True(v.Examples > 0, $"{v.Name}: no examples in its spec");
            Assert.Contains("examples:\n  ", help);
            Assert.Contains("exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 corrupt data, 5 store locked", help);
            foreach (var o in v.Options)
            {
                // An option line: "  -o, --out DIR  help" or "      --json  help".
                var line = help.Split('\n').FirstOrDefault(l => l.StartsWith("  ", StringComparison.Ordinal) && l.TrimStart().StartsWith('-') &&
                    (l.Contains("--" + o.Name + " ") || l.EndsWith("--" + o.Name, StringComparison.Ordinal)));
                Assert.True(line != null, $"{v.Name} --help does not show --{o.Name}:\n{help}");
                if (o.Short != null) Assert.Contains($"-{o.Short}, --{o.Name}", line);
            }
        }
    }

    [Fact]
    public void Unknown_options_and_commands_name_the_verb_and_the_closest_spelling()
    {
        var r = Cli.Run("export", "rec", "--ot", "/tmp/x").ExpectExit(2);
        AssertCleanError(r);
        Assert.Contains("unknown option '--ot' for 'export'", r.Stderr);
        Assert.Contains("did you mean '--out'?", r.Stderr);
        Assert.Contains("diffkeeper export --help", r.Stderr);

        r = Cli.Run("timeline", "rec", "--pth=/x").ExpectExit(2);
        Assert.Contains("unknown option '--pth' for 'timeline' (did you mean '--path'?)", r.Stderr);

        r = Cli.Run("gc", "--keep-lats", "3").ExpectExit(2);
        Assert.Contains("did you mean '--keep-last'?", r.Stderr);

        // Nothing close: no suggestion, still the verb and where to look.
        r = Cli.Run("ls", "--zzzzzz").ExpectExit(2);
        Assert.Contains("unknown option '--zzzzzz' for 'ls' (see diffkeeper ls --help)", r.Stderr);
        Assert.DoesNotContain("did you mean", r.Stderr);

        r = Cli.Run("exprot", "rec").ExpectExit(2);
        Assert.Contains("unknown command 'exprot' (did you mean 'export'?)", r.Stderr);
        r = Cli.RunRaw(["help", "timelin"]).ExpectExit(2);
        Assert.Contains("did you mean 'timeline'?", r.Stderr);

        r = Cli.Run("show", "rec", "/p", "--at").ExpectExit(2);
        Assert.Contains("option --at for 'show' needs a value", r.Stderr);
        r = Cli.Run("show", "rec").ExpectExit(2);
        Assert.Contains("show: missing arguments; usage: diffkeeper show REC PATH", r.Stderr);
        r = Cli.Run("gc", "--dry-run=yes").ExpectExit(2);
        Assert.Contains("option --dry-run for 'gc' takes no value", r.Stderr);
        r = Cli.RunRaw(["completion", "tcsh"]).ExpectExit(2);
        Assert.Contains("unknown shell 'tcsh'", r.Stderr);
    }

    // ---- completions -----------------------------------------------------------------------------------------------

    private static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin != null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60))) { p.Kill(true); throw new Xunit.Sdk.XunitException($"{file} did not finish in 60 s"); }
        return (p.ExitCode, o.Result, e.Result);
    }

    /// <summary>`diffkeeper completion SHELL` in a file, checked with `SHELL -n` (the shell is required).</summary>
    private string Script(string shell)
    {
        Integration.Require(Integration.HasTool(shell), $"needs {shell} (.ci/run installs it)");
        var path = Tmp.Sub("completion." + shell);
        File.WriteAllBytes(path, Cli.RunRaw(["completion", shell]).ExpectOk().Stdout);
        var (code, _, err) = Run(shell, ["-n", path]);
        Assert.True(code == 0, $"{shell} -n {path}: {err}");
        return path;
    }

    /// <summary>PATH with the binary under test first, as `diffkeeper` (the name the scripts complete).</summary>
    private Dictionary<string, string> PathEnv()
    {
        var dir = Tmp.Sub("bin");
        Directory.CreateDirectory(dir);
        if (!File.Exists(Path.Combine(dir, "diffkeeper"))) File.CreateSymbolicLink(Path.Combine(dir, "diffkeeper"), Cli.Binary);
        return new() { ["PATH"] = dir + ":" + Environment.GetEnvironmentVariable("PATH"), ["DIFFKEEPER_STORE"] = StoreDir };
    }

    private string MakeRecording()
    {
        var tree = MakeTree("tree", ("etc/app.conf", "port=1\n"));
        Snapshot(tree, "demo-rec", "2026-11-23T10:00:00Z");
        return tree;
    }

    /// <summary>Asks bash's function for the completions of a command line (the last word is the one completed).</summary>
    private List<string> BashComplete(string script, params string[] words)
    {
        var quoted = string.Join(' ', words.Select(w => "'" + w.Replace("'", "'\\''") + "'"));
        var prog = $"source '{script}' || exit 9\nCOMP_WORDS=(diffkeeper {quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); COMPREPLY=()\n" +
                   "_diffkeeper; rc=$?; printf '%s\\n' \"${COMPREPLY[@]}\"; exit $rc\n";
        var (code, o, e) = Run("bash", ["--norc", "--noprofile", "-c", prog], env: PathEnv());
        Assert.True(code == 0, $"bash completion of `diffkeeper {string.Join(' ', words)}` failed ({code}): {e}");
        Assert.True(e.Length == 0, $"bash completion printed on stderr: {e}");
        return o.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    [Fact]
    public void Bash_completion_loads_and_completes_verbs_options_files_and_recordings()
    {
        var verbs = Spec();
        var script = Script("bash");

        Assert.Equal(["export"], BashComplete(script, "ex"));
        Assert.Equal(verbs.Select(v => v.Name).Order(), BashComplete(script, "").Order());

        // Every verb completes every one of its options (and the global ones) after "--".
        foreach (var v in verbs)
        {
            var got = BashComplete(script, v.Name, "--");
            foreach (var o in v.Options) Assert.Contains("--" + o.Name, got);
            var gotShort = BashComplete(script, v.Name, "-");
            foreach (var o in v.Options.Where(o => o.Short != null)) Assert.Contains("-" + o.Short, gotShort);
        }
        var export = BashComplete(script, "export", "--");
        Assert.Contains("--out", export);
        Assert.Contains("--oci-layout", export);
        Assert.Contains("--store", export);
        Assert.Equal(["--oci", "--oci-layout", "--out"], BashComplete(script, "export", "--o").Order(StringComparer.Ordinal));

        // A value that is a path completes file names, one with no completion nothing (not the option list).
        var dir = Tmp.Sub("outdir-xyz");
        Directory.CreateDirectory(dir);
        Assert.Equal([dir], BashComplete(script, "export", "rec", "--out", Tmp.Sub("outdir-x")));
        Assert.Empty(BashComplete(script, "export", "rec", "--at", ""));
        Assert.Equal([dir], BashComplete(script, "snapshot", Tmp.Sub("outdir-")));
        Assert.Equal(["containerd"], BashComplete(script, "setup", ""));
        Assert.Equal(["bash", "fish", "zsh"], BashComplete(script, "completion", "").Order(StringComparer.Ordinal));

        // Recordings from the store, --store honoured; a missing store completes nothing, silently.
        MakeRecording();
        Assert.Equal(["demo-rec"], BashComplete(script, "--store", StoreDir, "show", "demo"));
        Assert.Contains("demo-rec", BashComplete(script, "timeline", ""));
        Assert.Empty(BashComplete(script, "--store", Tmp.Sub("no-store"), "show", "demo"));
        Assert.Empty(BashComplete(script, "--store", StoreDir, "show", "demo-rec", "/etc"));
    }

    [Fact]
    public void Zsh_completion_loads_and_completes_verbs_and_options()
    {
        var script = Script("zsh");
        var fpath = Tmp.Sub("zfunc");
        Directory.CreateDirectory(fpath);
        File.Copy(script, Path.Combine(fpath, "_diffkeeper"));
        MakeRecording();

        // An interactive zsh in a pseudo-terminal (zsh/zpty) with compinit; ^X lists the choices for the line.
        string Listing(string line, string expect)
        {
            var prog = $$"""
                zmodload zsh/zpty || exit 9
                zpty z zsh -f -i
                zpty -w z "PS1=''; fpath=('{{fpath}}' \$fpath); autoload -Uz compinit; compinit -u -D"
                zpty -w z "zle -C list-only list-choices _main_complete; bindkey '^X' list-only"
                zpty -w -n z $'{{line}}\x18'
                local all= chunk i
                for i in {1..100}; do
                  sleep 0.1
                  while zpty -r -t z chunk; do all+=$chunk; done
                  [[ $all == *'{{expect}}'* ]] && break
                done
                print -r -- "$all"
                zpty -d z
                """;
            var (c, o, e) = Run("zsh", ["-f", "-c", prog], env: PathEnv());
            Assert.True(c == 0, $"zsh zpty run failed ({c}): {e}");
            // What zsh echoed before the line we typed is the set-up: the listing follows its first echo (zsh redraws
            // the line again after the listing).
            int at = o.IndexOf(line, StringComparison.Ordinal);
            Assert.True(at >= 0, $"zsh did not echo `{line}`: {o}");
            return o[(at + line.Length)..];
        }
        var verbs = Listing("diffkeeper ex", "export");
        Assert.Contains("export", verbs);
        var opts = Listing("diffkeeper export --o", "oci-layout");
        Assert.Contains("--out", opts);
        Assert.Contains("--oci-layout", opts);
        Assert.Contains("target directory or .tar file", opts);
        Assert.Contains("demo-rec", Listing("diffkeeper show de", "demo-rec"));
    }

    [Fact]
    public void Fish_completion_loads_and_completes_verbs_options_and_recordings()
    {
        var verbs = Spec();
        var script = Script("fish");
        MakeRecording();
        List<string> Complete(string line)
        {
            var (c, o, e) = Run("fish", ["--no-config", "-c", $"source '{script}'; complete -C '{line}'"], env: PathEnv());
            Assert.True(c == 0 && e.Length == 0, $"fish complete -C '{line}' failed ({c}): {e}");
            return o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        }
        Assert.Equal(["export"], Complete("diffkeeper ex"));
        Assert.Equal(verbs.Select(v => v.Name).Order(StringComparer.Ordinal), Complete("diffkeeper ").Order(StringComparer.Ordinal));
        foreach (var v in verbs)
        {
            var got = Complete($"diffkeeper {v.Name} --");
            foreach (var o in v.Options) Assert.Contains("--" + o.Name, got);
        }
        Assert.Equal(["containerd"], Complete("diffkeeper setup "));
        Assert.Contains("demo-rec", Complete("diffkeeper show "));
        Assert.Contains("demo-rec", Complete($"diffkeeper --store {StoreDir} timeline de"));
        // After the recording: no recordings again (show's PATH is a path inside the recording).
        Assert.DoesNotContain("demo-rec", Complete("diffkeeper show demo-rec "));
    }

    // ---- man pages -------------------------------------------------------------------------------------------------

    private static string RenderMan(string page)
    {
        var (code, o, e) = Run("man", ["--warnings=w", "-l", page], env: new Dictionary<string, string> { ["MANWIDTH"] = "200", ["MANPAGER"] = "cat", ["PAGER"] = "cat", ["MAN_KEEP_FORMATTING"] = "" });
        Assert.True(code == 0, $"man -l {page} failed ({code}): {e}");
        var warnings = e.Split('\n').Where(l => l.Length > 0).ToList();
        Assert.True(warnings.Count == 0, $"man -l {page} warned:\n{e}");
        // Strip overstrike (bold/underline) in case the formatter still uses it.
        return System.Text.RegularExpressions.Regex.Replace(o, ".\b", "");
    }

    /// <summary>Runs of white space (roff fills and wraps lines) as one space.</summary>
    private static string Squeeze(string s) => System.Text.RegularExpressions.Regex.Replace(s, @"\s+", " ");

    [Fact]
    public void Man_pages_render_with_every_verb_and_option()
    {
        Integration.Require(Integration.HasTool("man"), "needs man (man-db; .ci/run installs it)");
        var verbs = Spec();
        var dir = Tmp.Sub("man");
        var r = Cli.RunRaw(["man", "--out", dir]).ExpectOk();
        Assert.Equal(["containerd-shim-diffkeeper-v1.8", "diffkeeper.1", "diffkeeperd.8"],
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(3, r.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var cli = RenderMan(Path.Combine(dir, "diffkeeper.1"));
        foreach (var section in new[] { "NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "SEE ALSO" })
            Assert.Contains("\n" + section + "\n", cli);
        var flat = Squeeze(cli);
        foreach (var v in verbs)
        {
            Assert.Contains("\n   " + v.Name + "\n", cli);
            Assert.Contains(Squeeze(v.Usage), flat);
            foreach (var o in v.Options) Assert.Contains("--" + o.Name, cli);
        }
        foreach (var code in new[] { "0", "1", "2", "3", "4", "5" }) Assert.Matches($"\n {{7}}{code} +[a-z]", cli);

        var daemon = RenderMan(Path.Combine(dir, "diffkeeperd.8"));
        var shim = RenderMan(Path.Combine(dir, "containerd-shim-diffkeeper-v1.8"));
        Assert.Contains("diffkeeperd - the DiffKeeper recorder daemon", daemon);
        Assert.Contains("io.containerd.diffkeeper.v1", shim);

        // The daemon's and the shim's pages list the options their binaries accept, when those are here.
        var bin = Path.GetDirectoryName(Cli.Binary)!;
        var daemonBin = Path.Combine(bin, "diffkeeperd");
        if (File.Exists(daemonBin))
        {
            var (c, o, _) = Run(daemonBin, ["--help"]);
            Assert.Equal(0, c);
            var options = System.Text.RegularExpressions.Regex.Matches(o, @"(?<![\w-])--[a-z][a-z-]+").Select(m => m.Value).Distinct().ToList();
            Assert.True(options.Count >= 6, o);
            foreach (var opt in options) Assert.Contains(opt, daemon);
        }
        else Output.WriteLine($"no {daemonBin}: diffkeeperd.8 not compared with diffkeeperd --help");
        var shimBin = Path.Combine(bin, "containerd-shim-diffkeeper-v1");
        if (File.Exists(shimBin))
        {
            var (c, o, _) = Run(shimBin, ["-h"]);
            Assert.Equal(0, c);
            var flags = System.Text.RegularExpressions.Regex.Matches(o, @"(?m)^\s+(-[a-z][a-z-]*)").Select(m => m.Groups[1].Value).Distinct().ToList();
            Assert.True(flags.Count >= 9, o);
            foreach (var f in flags) Assert.Contains(f, shim.Replace("\u2010", "-"));
        }
        else Output.WriteLine($"no {shimBin}: containerd-shim-diffkeeper-v1.8 not compared with its -h");
    }
}
