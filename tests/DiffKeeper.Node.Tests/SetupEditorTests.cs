using DiffKeeper.Cli.Setup;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace DiffKeeper.Node.Tests;

/// <summary>The containerd config edit on sample configs: one inserted block, every other byte kept, idempotent.</summary>
public class SetupEditorTests
{
    private static readonly Version C16 = new(1, 6, 20), C17 = new(1, 7, 13), C20 = new(2, 0, 0);

    /// <summary>The result must be the original with one block inserted; returns that block.</summary>
    private static string InsertedBlock(string original, string result)
    {
        int p = 0;
        while (p < original.Length && original[p] == result[p]) p++;
        int s = 0;
        while (s < original.Length - p && original[^(s + 1)] == result[^(s + 1)]) s++;
        Assert.Equal(original.Length, p + s);
        Assert.True(result.Length > original.Length);
        return result.Substring(p, result.Length - original.Length);
    }

    private static DocumentSyntax Parse(string text)
    {
        var doc = SyntaxParser.Parse(text, "t.toml", validate: true);
        Assert.False(doc.HasErrors, string.Join("; ", doc.Diagnostics.Select(d => d.ToString())));
        return doc;
    }

    private static string? Str(DocumentSyntax doc, params string[] path) => (ContainerdConfigEditor.FindValue(doc, path) as StringValueSyntax)?.Value;
    private static string[] V2(params string[] rest) => [.. ContainerdConfigEditor.RuntimesPath(2), .. rest];
    private static string[] V3(params string[] rest) => [.. ContainerdConfigEditor.RuntimesPath(3), .. rest];

    private static void AssertIdempotent(string result, Version v)
    {
        var again = ContainerdConfigEditor.Plan(result, v);
        Assert.False(again.Changed);
        Assert.Equal(result, again.NewText);
    }

    [Fact]
    public void Containerd16Default_GetsTheRuntime_RuncKept_NoOptionsToCarry()
    {
        var original = Node.Sample("containerd-1.6-default.toml");
        var plan = ContainerdConfigEditor.Plan(original, C16);
        Assert.True(plan.Changed);
        Assert.Equal(2, plan.ConfigVersion);
        var block = InsertedBlock(original, plan.NewText);
        var doc = Parse(plan.NewText);
        Assert.Equal("io.containerd.diffkeeper.v1", Str(doc, V2("diffkeeper", "runtime_type")));
        Assert.Equal("io.containerd.runc.v2", Str(doc, V2("runc", "runtime_type")));
        Assert.Contains("pod_annotations = [\"io.diffkeeper/*\"]", block);
        Assert.Contains("container_annotations = [\"io.diffkeeper/*\"]", block);
        // The defaults (SystemdCgroup = false, BinaryName = "" …) need no copy, and runc exists: nothing else added.
        Assert.DoesNotContain("runtimes.runc]", block);
        Assert.DoesNotContain("options", block);
        Assert.Null(plan.OptionsFileText);
        // Inserted right after runc's options table, before the next table of the containerd section.
        int at = plan.NewText.IndexOf(block, StringComparison.Ordinal);
        Assert.True(plan.NewText.LastIndexOf("runtimes.runc.options]", at, StringComparison.Ordinal) > 0);
        Assert.Contains("untrusted_workload_runtime]", plan.NewText[(at + block.Length)..]);
        AssertIdempotent(plan.NewText, C16);
    }

    [Fact]
    public void Containerd17WithOtherRuntimesAndComments_CarriesRuncOptionsInline()
    {
        var original = Node.Sample("containerd-1.7-custom.toml");
        var plan = ContainerdConfigEditor.Plan(original, C17);
        var block = InsertedBlock(original, plan.NewText);
        var doc = Parse(plan.NewText);
        Assert.Equal("io.containerd.diffkeeper.v1", Str(doc, V2("diffkeeper", "runtime_type")));
        Assert.True(ContainerdConfigEditor.FindValue(doc, V2("diffkeeper", "options", "SystemdCgroup")) is BooleanValueSyntax { Value: true });
        Assert.Equal("/usr/local/sbin/runc", Str(doc, V2("diffkeeper", "options", "BinaryName")));
        // NoPivotRoot = false is the default: not copied. runc exists: not added again.
        Assert.DoesNotContain("NoPivotRoot", block);
        Assert.DoesNotContain("runtimes.runc]", block);
        Assert.Null(plan.OptionsFileText);
        Assert.Equal("io.containerd.kata.v2", Str(doc, V2("kata", "runtime_type")));
        // After the last runtime (kata), before the cni table and its comment-free neighbours.
        int at = plan.NewText.IndexOf(block, StringComparison.Ordinal);
        Assert.True(plan.NewText.LastIndexOf("privileged_without_host_devices = true", at, StringComparison.Ordinal) > 0);
        Assert.StartsWith("[plugins.\"io.containerd.grpc.v1.cri\".cni]", plan.NewText[(at + block.Length)..].TrimStart());
        AssertIdempotent(plan.NewText, C17);
    }

    [Fact]
    public void Containerd16_CarriesRuncOptionsThroughConfigPath()
    {
        var original = Node.Sample("containerd-1.7-custom.toml");
        var plan = ContainerdConfigEditor.Plan(original, C16, "/etc/diffkeeper/runc.toml");
        var doc = Parse(plan.NewText);
        Assert.Equal("/etc/diffkeeper/runc.toml", Str(doc, V2("diffkeeper", "options", "ConfigPath")));
        Assert.Null(ContainerdConfigEditor.FindValue(doc, V2("diffkeeper", "options", "SystemdCgroup")));
        Assert.NotNull(plan.OptionsFileText);
        var opts = Parse(plan.OptionsFileText!);
        Assert.True(ContainerdConfigEditor.FindValue(opts, ["SystemdCgroup"]) is BooleanValueSyntax { Value: true });
        Assert.Equal("/usr/local/sbin/runc", (ContainerdConfigEditor.FindValue(opts, ["BinaryName"]) as StringValueSyntax)?.Value);
        AssertIdempotent(plan.NewText, C16);
    }

    [Fact]
    public void Containerd20Version3_GoesUnderTheCriRuntimePlugin()
    {
        var original = Node.Sample("containerd-2.0-v3.toml");
        var plan = ContainerdConfigEditor.Plan(original, C20);
        Assert.Equal(3, plan.ConfigVersion);
        var block = InsertedBlock(original, plan.NewText);
        var doc = Parse(plan.NewText);
        Assert.Equal("io.containerd.diffkeeper.v1", Str(doc, V3("diffkeeper", "runtime_type")));
        Assert.True(ContainerdConfigEditor.FindValue(doc, V3("diffkeeper", "options", "SystemdCgroup")) is BooleanValueSyntax { Value: true });
        Assert.Contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.diffkeeper]", block);
        Assert.DoesNotContain("grpc.v1.cri", block);
        // Even an unknown containerd version keeps version 3's inline form (only 2.x reads version 3).
        Assert.Equal(plan.NewText, ContainerdConfigEditor.Plan(original, null).NewText);
        AssertIdempotent(plan.NewText, C20);
    }

    [Fact]
    public void FirstExplicitRuntime_AddsRuncToo()
    {
        const string original = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  restrict_oom_score_adj = true";
        var plan = ContainerdConfigEditor.Plan(original, C16);
        InsertedBlock(original, plan.NewText);
        var doc = Parse(plan.NewText);
        Assert.Equal("io.containerd.runc.v2", Str(doc, V2("runc", "runtime_type")));
        Assert.Equal("io.containerd.diffkeeper.v1", Str(doc, V2("diffkeeper", "runtime_type")));
        // The original's last line had no newline: it must not be glued to ours.
        Assert.Contains("restrict_oom_score_adj = true\n", plan.NewText);
        AssertIdempotent(plan.NewText, C16);
    }

    [Theory]
    [InlineData(null, 1, 6, 2)]
    [InlineData("", 2, 1, 3)]
    [InlineData("# only a comment\n", 1, 7, 2)]
    public void NoConfig_BecomesAVersionedConfigForThisContainerd(string? original, int major, int minor, int expectVersion)
    {
        var plan = ContainerdConfigEditor.Plan(original, new Version(major, minor, 0));
        Assert.Equal(expectVersion, plan.ConfigVersion);
        var doc = Parse(plan.NewText);
        Assert.True(ContainerdConfigEditor.FindValue(doc, ["version"]) is IntegerValueSyntax iv && iv.Value == expectVersion);
        var rt = expectVersion == 2 ? V2("runc", "runtime_type") : V3("runc", "runtime_type");
        Assert.Equal("io.containerd.runc.v2", Str(doc, rt));
        if (original != null) InsertedBlock(original, plan.NewText);
        AssertIdempotent(plan.NewText, new Version(major, minor, 0));
    }

    [Fact]
    public void Version1Config_IsRefused()
    {
        var e = Assert.Throws<SetupException>(() => ContainerdConfigEditor.Plan("[plugins.cri]\n  sandbox_image = \"x\"\n", C16));
        Assert.Contains("no `version` key", e.Message);
    }

    [Fact]
    public void OurNameTakenByAnotherRuntime_IsRefused()
    {
        const string original = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.diffkeeper]\n  runtime_type = \"io.containerd.runc.v2\"\n";
        var e = Assert.Throws<SetupException>(() => ContainerdConfigEditor.Plan(original, C16));
        Assert.Contains("runtime_type", e.Message);
    }

    [Fact]
    public void InvalidToml_IsRefused()
    {
        Assert.Throws<SetupException>(() => ContainerdConfigEditor.Plan("version = 2\n[plugins\n", C16));
    }

    [Fact]
    public void DisabledCriPlugin_IsReported()
    {
        var plan = ContainerdConfigEditor.Plan("version = 2\ndisabled_plugins = [\"cri\"]\n", C16);
        Assert.Contains(plan.Notes, n => n.Contains("CRI plugin is disabled"));
    }

    [Fact]
    public void UnifiedDiff_ShowsOnlyTheInsertion()
    {
        var original = Node.Sample("containerd-1.7-custom.toml");
        var plan = ContainerdConfigEditor.Plan(original, C17);
        var diff = TextDiff.Unified(original, plan.NewText, "a", "b");
        var changed = diff.Split('\n').Where(l => l.Length > 0 && (l[0] == '+' || l[0] == '-') && !l.StartsWith("+++") && !l.StartsWith("---")).ToList();
        Assert.All(changed, l => Assert.StartsWith("+", l));
        Assert.Contains("+  runtime_type = \"io.containerd.diffkeeper.v1\"", changed);
        Assert.Equal("", TextDiff.Unified(original, original, "a", "b"));
    }
}
