using System.Text.RegularExpressions;
using DiffKeeper.Cli.Setup;
using Tomlyn.Parsing;
using Tomlyn.Syntax;
using YamlDotNet.RepresentationModel;

namespace DiffKeeper.Node.Tests;

/// <summary>
/// packaging/kubernetes/: the manifests parse, agree with what `diffkeeper setup containerd` writes and with the
/// annotations the shim and daemon read; the DaemonSet installer's script runs for real against a throwaway host
/// root (scripts/k8s-installer.sh). There is no Kubernetes cluster here: nothing is applied to an API server.
/// </summary>
[Collection("packages")]
public partial class KubernetesTests
{
    private static string Dir => Path.Combine(Node.RepoRoot, "packaging", "kubernetes");

    private static List<YamlMappingNode> Load(string file)
    {
        var s = new YamlStream();
        s.Load(new StringReader(File.ReadAllText(Path.Combine(Dir, file))));
        return [.. s.Documents.Select(d => Assert.IsType<YamlMappingNode>(d.RootNode))];
    }

    private static YamlNode At(YamlNode n, params object[] path)
    {
        foreach (var p in path)
            n = p is int i ? ((YamlSequenceNode)n).Children[i] : ((YamlMappingNode)n).Children[new YamlScalarNode((string)p)];
        return n;
    }

    private static string Str(YamlNode n, params object[] path) => ((YamlScalarNode)At(n, path)).Value!;

    private static YamlMappingNode Kind(IEnumerable<YamlMappingNode> docs, string kind) => Assert.Single(docs, d => Str(d, "kind") == kind);

    [GeneratedRegex(@"""(io\.diffkeeper/[a-z-]+)""")] private static partial Regex AnnotationLiteral();

    /// <summary>The io.diffkeeper/* annotation keys the shim and the daemon read: the string constants in their source.</summary>
    private static HashSet<string> HonouredAnnotations() =>
        [.. new[] { "DiffKeeper.Recorder", "DiffKeeper.Shim" }
            .SelectMany(p => Directory.EnumerateFiles(Path.Combine(Node.RepoRoot, "src", p), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .SelectMany(f => AnnotationLiteral().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))];

    [Fact]
    public void RuntimeClass_HandlerIsTheRuntimeSetupWrites()
    {
        var rc = Kind(Load("runtimeclass.yaml"), "RuntimeClass");
        Assert.Equal("node.k8s.io/v1", Str(rc, "apiVersion"));
        var handler = Str(rc, "handler");
        Assert.Equal("diffkeeper", Str(rc, "metadata", "name"));
        Assert.NotEmpty(((YamlMappingNode)At(rc, "scheduling", "nodeSelector")).Children);
        // What setup really writes, for containerd 1.6 (config v2) and 2.x (v3): runtimes.<handler> with our runtime_type.
        foreach (var (sample, v) in new[] { ("containerd-1.6-default.toml", new Version(1, 6, 20)), ("containerd-2.0-v3.toml", new Version(2, 0, 0)) })
        {
            var plan = ContainerdConfigEditor.Plan(Node.Sample(sample), v);
            var doc = SyntaxParser.Parse(plan.NewText, sample, validate: true);
            Assert.Equal("io.containerd.diffkeeper.v1",
                (ContainerdConfigEditor.FindValue(doc, [.. ContainerdConfigEditor.RuntimesPath(plan.ConfigVersion), handler, "runtime_type"]) as StringValueSyntax)?.Value);
        }
    }

    [Fact]
    public void ExamplePodAndJob_UseTheRuntimeClassAndOnlyHonouredAnnotations()
    {
        var honoured = HonouredAnnotations();
        Assert.Contains("io.diffkeeper/include", honoured);   // the scan found the daemon's constants
        var rcName = Str(Kind(Load("runtimeclass.yaml"), "RuntimeClass"), "metadata", "name");
        var pod = Kind(Load("example-pod.yaml"), "Pod");
        var job = Kind(Load("example-job.yaml"), "Job");
        Assert.Equal("batch/v1", Str(job, "apiVersion"));
        foreach (var podSpecParent in new YamlNode[] { pod, At(job, "spec", "template") })
        {
            Assert.Equal(rcName, Str(podSpecParent, "spec", "runtimeClassName"));
            Assert.NotEmpty(((YamlSequenceNode)At(podSpecParent, "spec", "containers")).Children);
            var ann = (YamlMappingNode)At(podSpecParent, "metadata", "annotations");
            var keys = ann.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).Where(k => k.StartsWith("io.diffkeeper/")).ToList();
            Assert.NotEmpty(keys);
            foreach (var k in keys) Assert.True(honoured.Contains(k), $"{k} is not read by the shim or the daemon (they read: {string.Join(", ", honoured)})");
        }
    }

    private static string InstallerScript(out YamlMappingNode ds)
    {
        ds = Kind(Load("daemonset-installer.yaml"), "DaemonSet");
        var spec = At(ds, "spec", "template", "spec");
        var c = At(spec, "containers", 0);
        Assert.Equal("true", Str(c, "securityContext", "privileged"));
        Assert.Equal("true", Str(spec, "hostPID"));
        var cmd = ((YamlSequenceNode)At(c, "command")).Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal(["sh", "-euc"], cmd.Take(2));
        return cmd[2];
    }

    [Fact]
    public void DaemonSet_MountsTheHostWhereItsScriptLooks()
    {
        var script = InstallerScript(out var ds);
        Assert.Equal("Namespace", Str(Load("daemonset-installer.yaml")[0], "kind"));
        var spec = At(ds, "spec", "template", "spec");
        Assert.Equal("/", Str(spec, "volumes", 0, "hostPath", "path"));
        var mount = Str(At(spec, "containers", 0), "volumeMounts", 0, "mountPath");
        Assert.Contains($"H=${{HOST_ROOT:-{mount}}}", script);
        Assert.Equal(Str(ds, "spec", "selector", "matchLabels", "app"), Str(ds, "spec", "template", "metadata", "labels", "app"));
    }

    [SkippableFact]
    public void DaemonSetInstaller_InstallsOnAHostRootAndIsIdempotent()
    {
        Integration.Require(Integration.IsRoot, "needs root");
        Integration.Require(Integration.HasTool("unshare") && Integration.HasTool("chroot") && Integration.HasTool("systemctl") && Integration.HasTool("containerd") &&
                     Integration.HasTool("dpkg-deb") && File.Exists("/bin/busybox"), "needs unshare, chroot, systemctl, containerd, dpkg-deb and busybox-static");
        var script = InstallerScript(out _);
        using var t = new TempDir("dk-node-");
        var deb = PackageTests.Build("build-deb.sh", t.Path);
        var tree = t["tree"];
        Node.Ok("dpkg-deb", "-x", deb, tree);
        File.WriteAllText(t["installer.sh"], script);
        var (code, o, e) = Node.Run("unshare", ["-m", "--propagation", "private", "bash", Node.Script("k8s-installer.sh"), t["installer.sh"], tree,
            Node.SamplePath("containerd-1.7-custom.toml")], timeoutMs: 300_000);
        Assert.True(code == 0 && o.TrimEnd().EndsWith("OK"), $"k8s-installer.sh exit {code}:\n{o}\n{e}");
        Assert.Contains("CHECK run 2 changed nothing", o);
    }
}
