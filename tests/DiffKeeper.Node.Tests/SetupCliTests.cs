namespace DiffKeeper.Node.Tests;

/// <summary>
/// `diffkeeper setup containerd` as a user runs it (the real CLI binary) on copies of the sample configs: writes,
/// backup, diff and restart notice, idempotence, --dry-run, --undo back to the identical bytes; and the result is
/// loaded by the real containerd (`containerd config dump`) with our runtime in it.
/// </summary>
public class SetupCliTests
{
    private static (int Code, string Out, string Err) Setup(params string[] args) => Node.Run(Node.Cli, ["setup", "containerd", .. args]);

    [SkippableTheory]
    [InlineData("containerd-1.6-default.toml", "1.6.20")]
    [InlineData("containerd-1.7-custom.toml", "1.7.13")]
    [InlineData("containerd-1.7-custom.toml", "1.6.20")]
    [InlineData("containerd-2.0-v3.toml", "2.0.0")]
    public void SetupThenUndo_RoundTripsByteForByte(string sample, string containerdVersion)
    {
        using var t = new TempDir("dk-node-");
        var config = t["config.toml"];
        var options = t["runc.toml"];
        var original = File.ReadAllBytes(Node.SamplePath(sample));
        File.WriteAllBytes(config, original);
        string[] common = ["--config", config, "--containerd-version", containerdVersion, "--options-file", options];

        var dry = Setup([.. common, "--dry-run"]);
        Assert.True(dry.Code == 0, dry.Err + dry.Out);
        Assert.Contains("+[plugins.", dry.Out);
        Assert.Contains("dry run: nothing written", dry.Out);
        Assert.Equal(original, File.ReadAllBytes(config));
        Assert.False(File.Exists(config + ".diffkeeper-backup"));

        var run = Setup(common);
        Assert.True(run.Code == 0, run.Err + run.Out);
        Assert.Contains("--- " + config, run.Out);
        Assert.Contains("+  runtime_type = \"io.containerd.diffkeeper.v1\"", run.Out);
        Assert.Contains("restart containerd", run.Out);
        Assert.Equal(original, File.ReadAllBytes(config + ".diffkeeper-backup"));
        var configured = File.ReadAllBytes(config);
        Assert.NotEqual(original, configured);
        bool viaFile = sample.Contains("1.7") && containerdVersion.StartsWith("1.6");
        Assert.Equal(viaFile, File.Exists(options));
        if (viaFile) Assert.Contains("SystemdCgroup = true", File.ReadAllText(options));

        var again = Setup(common);
        Assert.True(again.Code == 0, again.Err + again.Out);
        Assert.Contains("no change", again.Out);
        Assert.Contains("containerd needs no restart", again.Out);
        Assert.Equal(configured, File.ReadAllBytes(config));

        var undo = Setup([.. common, "--undo"]);
        Assert.True(undo.Code == 0, undo.Err + undo.Out);
        Assert.Contains("-  runtime_type = \"io.containerd.diffkeeper.v1\"", undo.Out);
        Assert.Equal(original, File.ReadAllBytes(config));
        Assert.False(File.Exists(config + ".diffkeeper-backup"));
        Assert.False(File.Exists(options));
        Assert.Equal(3, Setup([.. common, "--undo"]).Code);
    }

    [SkippableFact]
    public void Undo_RefusesToOverwriteLaterEdits()
    {
        using var t = new TempDir("dk-node-");
        var config = t["config.toml"];
        File.Copy(Node.SamplePath("containerd-1.7-custom.toml"), config);
        Assert.Equal(0, Setup("--config", config, "--containerd-version", "1.7.0").Code);
        File.AppendAllText(config, "\n[debug]\n  level = \"debug\"\n");
        var edited = File.ReadAllBytes(config);
        var undo = Setup("--config", config, "--containerd-version", "1.7.0", "--undo");
        Assert.Equal(1, undo.Code);
        Assert.Contains("changed since", undo.Err);
        Assert.Equal(edited, File.ReadAllBytes(config));
    }

    [SkippableFact]
    public void MissingConfig_IsCreated_AndUndoRemovesIt()
    {
        using var t = new TempDir("dk-node-");
        var config = t["etc/containerd/config.toml"];
        var run = Setup("--config", config, "--containerd-version", "1.6.20");
        Assert.True(run.Code == 0, run.Err + run.Out);
        Assert.StartsWith("version = 2\n", File.ReadAllText(config));
        Assert.True(File.Exists(config + ".diffkeeper-created"));
        Assert.Equal(0, Setup("--config", config, "--containerd-version", "1.6.20", "--undo").Code);
        Assert.False(File.Exists(config));
        Assert.False(File.Exists(config + ".diffkeeper-created"));
    }

    /// <summary>The edited 1.6/1.7 configs are what the real containerd on this machine (1.6) loads.</summary>
    [SkippableTheory]
    [InlineData("containerd-1.6-default.toml")]
    [InlineData("containerd-1.7-custom.toml")]
    public void EditedConfig_IsLoadedByTheRealContainerd(string sample)
    {
        Integration.Require(Integration.HasTool("containerd"), "needs containerd (Debian's package)");
        using var t = new TempDir("dk-node-");
        var config = t["config.toml"];
        File.Copy(Node.SamplePath(sample), config);
        Assert.Equal(0, Setup("--config", config, "--options-file", t["runc.toml"]).Code);
        var (code, dump, err) = Node.Run("containerd", ["--config", config, "config", "dump"]);
        Assert.True(code == 0, err + dump);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.diffkeeper]", dump);
        Assert.Contains("runtime_type = \"io.containerd.diffkeeper.v1\"", dump);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]", dump);
        Assert.Contains("io.diffkeeper/*", dump);
    }
}
