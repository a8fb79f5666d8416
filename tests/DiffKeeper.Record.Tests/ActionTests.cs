using System.Diagnostics;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace DiffKeeper.Record.Tests;

/// <summary>
/// The drop-in GitHub step (action.yml at the repository root) is valid YAML, and its `run:` steps do what they say
/// when run locally as the runner would (bash -eo pipefail, step env, GITHUB_OUTPUT, `if:` on failure()): the
/// install step finds the built binaries on PATH (no network), the command runs under `diffkeeper record`, and on
/// failure the recording is packed with its report into the directory the upload step uploads. Also the GitLab
/// template parses and names the same commands.
/// </summary>
public sealed partial class ActionTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "DiffKeeper.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    private static YamlMappingNode Load(string path)
    {
        var yaml = new YamlStream();
        using (var r = new StreamReader(path)) yaml.Load(r);
        return (YamlMappingNode)yaml.Documents.Single().RootNode;
    }

    private static string? Str(YamlMappingNode m, string key) =>
        m.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;

    private static YamlMappingNode? Map(YamlMappingNode m, string key) =>
        m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v as YamlMappingNode : null;

    [GeneratedRegex(@"\$\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")]
    private static partial Regex Expression();

    /// <summary>Runs the action's steps with <paramref name="with"/> as inputs; returns the step outcomes and outputs.</summary>
    private static (Dictionary<string, int> Outcomes, Dictionary<string, Dictionary<string, string>> Outputs, string Out)
        RunAction(RecordHarness h, Dictionary<string, string> with, string workspace)
    {
        var action = Load(Path.Combine(RepoRoot(), "action.yml"));
        var runs = Map(action, "runs")!;
        Assert.Equal("composite", Str(runs, "using"));
        var inputs = new Dictionary<string, string>();
        foreach (var (k, v) in Map(action, "inputs")!.Children)
            inputs[((YamlScalarNode)k).Value!] = Str((YamlMappingNode)v, "default") ?? "";
        foreach (var (k, v) in with)
        {
            Assert.True(inputs.ContainsKey(k), $"action.yml has no input {k}");
            inputs[k] = v;
        }
        var runnerTemp = h.Sub("runner-temp");
        h.UsesStore(Path.Combine(runnerTemp, "diffkeeper-store")); // action.yml's DIFFKEEPER_STORE
        var outputs = new Dictionary<string, Dictionary<string, string>>();
        var outcomes = new Dictionary<string, int>();
        bool failed = false;
        string Eval(string text) => Expression().Replace(text, m =>
        {
            var e = m.Groups[1].Value;
            if (e.StartsWith("inputs.", StringComparison.Ordinal)) return inputs[e["inputs.".Length..]];
            if (e == "runner.temp") return runnerTemp;
            if (e == "github.action_repository") return "diffkeeper/diffkeeper";
            var parts = e.Split('.');
            if (parts is ["steps", var id, "outputs", var name]) return outputs.GetValueOrDefault(id)?.GetValueOrDefault(name) ?? "";
            throw new Xunit.Sdk.XunitException($"unknown expression {e} in action.yml");
        });
        bool Condition(string cond)
        {
            foreach (var term in cond.Split("&&", StringSplitOptions.TrimEntries))
            {
                if (term == "failure()") { if (!failed) return false; continue; }
                if (term == "always()") continue;
                var m = Regex.Match(term, @"^steps\.([a-z\-]+)\.outputs\.([a-z\-]+) != ''$");
                Assert.True(m.Success, $"unsupported condition term \"{term}\"");
                if ((outputs.GetValueOrDefault(m.Groups[1].Value)?.GetValueOrDefault(m.Groups[2].Value) ?? "") == "") return false;
            }
            return true;
        }
        var log = new System.Text.StringBuilder();
        foreach (var stepNode in ((YamlSequenceNode)runs.Children[new YamlScalarNode("steps")]).Children.Cast<YamlMappingNode>())
        {
            var id = Str(stepNode, "id") ?? Str(stepNode, "name")!;
            var cond = Str(stepNode, "if");
            bool run = cond == null ? !failed : Condition(cond);
            if (Str(stepNode, "uses") is { } uses)
            {
                // The upload is GitHub's own action (network): checked, not run.
                Assert.StartsWith("actions/upload-artifact@", uses);
                if (run) outcomes[id] = 0;
                continue;
            }
            if (!run) continue;
            Assert.Equal("bash", Str(stepNode, "shell"));
            var script = Path.Combine(runnerTemp, id + ".sh");
            File.WriteAllText(script, Str(stepNode, "run")!);
            var outputFile = Path.Combine(runnerTemp, id + ".output");
            File.WriteAllText(outputFile, "");
            var psi = new ProcessStartInfo("bash", ["--noprofile", "--norc", "-eo", "pipefail", script])
            {
                WorkingDirectory = Path.GetFullPath(Path.Combine(workspace, Eval(Str(stepNode, "working-directory") ?? "."))),
                RedirectStandardOutput = true, RedirectStandardError = true,
            };
            // The built binaries stand in for the installed .deb: the install step must find them and do nothing else.
            psi.Environment["PATH"] = Path.GetDirectoryName(h.Bins.Cli) + ":" + Environment.GetEnvironmentVariable("PATH");
            psi.Environment["RUNNER_TEMP"] = runnerTemp;
            psi.Environment["GITHUB_OUTPUT"] = outputFile;
            psi.Environment["GITHUB_WORKSPACE"] = workspace;
            psi.Environment["GITHUB_JOB"] = "test";
            psi.Environment["GITHUB_RUN_ID"] = "42";
            psi.Environment["GITHUB_RUN_ATTEMPT"] = "1";
            psi.Environment["DIFFKEEPER_SOCKET"] = Path.Combine(h.Dir.Path, "no-daemon.sock");
            psi.Environment.Remove("DIFFKEEPER_STORE");
            if (Map(stepNode, "env") is { } env)
                foreach (var (k, v) in env.Children) psi.Environment[((YamlScalarNode)k).Value!] = Eval(((YamlScalarNode)v).Value!);
            using var p = Process.Start(h.InCgroup(psi))!; // where Leftovers() looks for the cgroups `record` makes
            var o = p.StandardOutput.ReadToEndAsync();
            var e = p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(60_000), $"step {id} hung");
            p.WaitForExit();
            log.Append($"--- {id}: exit {p.ExitCode}\n{o.Result}{e.Result}");
            outcomes[id] = p.ExitCode;
            if (p.ExitCode != 0) failed = true;
            outputs[id] = File.ReadAllLines(outputFile).Where(l => l.Contains('=')).ToDictionary(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);
        }
        return (outcomes, outputs, log.ToString());
    }

    [SkippableFact]
    public void TheActionRecordsAFailingCommandAndPacksItsRecordingAndReport()
    {
        using var h = new RecordHarness();
        var ws = h.Sub("workspace");
        Directory.CreateDirectory(Path.Combine(ws, "src"));
        var (outcomes, outputs, log) = RunAction(h, new()
        {
            ["run"] = "echo 'result: flaky' > src/out.txt && echo tested && exit 5",
            ["working-directory"] = ".",
        }, ws);
        Assert.True(outcomes["install"] == 0, log);
        Assert.True(outcomes["record"] == 5, log);        // the job fails with the command's status
        Assert.Equal("5", outputs["record"]["exit-code"]);
        var rec = outputs["record"]["recording"];
        Assert.Matches("^[0-9a-f]{16}$", rec);
        Assert.True(outcomes["pack"] == 0, log);
        Assert.Contains("tested", log);                  // the command's stdout passed through
        Assert.True(outcomes.ContainsKey("Upload the recording"), log);
        Assert.Equal("result: flaky\n", File.ReadAllText(Path.Combine(ws, "src", "out.txt")));

        // What the upload step uploads: the packed recording (usable anywhere), its report and timeline.
        var outDir = Path.Combine(h.Dir.Path, "runner-temp", "diffkeeper-out");
        var pack = Path.Combine(outDir, rec + ".dkpack");
        Assert.True(File.Exists(pack), log);
        Assert.True(new FileInfo(Path.Combine(outDir, rec + ".html")).Length > 1000);
        Assert.Contains("/src/out.txt", File.ReadAllText(Path.Combine(outDir, rec + ".timeline.txt")));
        var shown = new Cli(h.Bins, h.Store).Ok("show", pack, "/src/out.txt");
        Assert.Equal("result: flaky\n", shown);
        h.AssertNoLeftovers();
    }

    [SkippableFact]
    public void TheActionUploadsNothingWhenTheCommandSucceeds()
    {
        using var h = new RecordHarness();
        var ws = h.Sub("workspace");
        var (outcomes, outputs, log) = RunAction(h, new() { ["run"] = "echo ok > ok.txt" }, ws);
        Assert.True(outcomes["record"] == 0, log);
        Assert.Equal("", outputs["record"]["recording"]); // keep: failure (the default) dropped it
        Assert.False(outcomes.ContainsKey("pack"), log);
        Assert.False(outcomes.ContainsKey("Upload the recording"), log);
        Assert.Equal("ok\n", File.ReadAllText(Path.Combine(ws, "ok.txt")));
    }

    [Fact]
    public void TheGitLabTemplateIsValidYamlAndRunsTheSameSteps()
    {
        var t = Load(Path.Combine(RepoRoot(), "ci", "gitlab", "diffkeeper.gitlab-ci.yml"));
        var job = Map(t, ".diffkeeper-record");
        Assert.NotNull(job);
        string Script(string key) => string.Join("\n", ((YamlSequenceNode)job!.Children[new YamlScalarNode(key)]).Children.Cast<YamlScalarNode>().Select(s => s.Value));
        Assert.Contains("diffkeeper record", Script("script"));
        Assert.Contains("diffkeeper pack", Script("after_script"));
        Assert.Contains("diffkeeper report", Script("after_script"));
        Assert.Equal("on_failure", Str(Map(job!, "artifacts")!, "when"));
        foreach (var key in new[] { "before_script", "script", "after_script" })
        {
            // Each script is valid POSIX shell.
            var file = Path.GetTempFileName();
            try
            {
                File.WriteAllText(file, Script(key));
                Env.Run("sh", "-n", file);
            }
            finally { File.Delete(file); }
        }
    }
}
