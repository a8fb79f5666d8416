namespace DiffKeeper.Node.Tests;

/// <summary>
/// Builds the .deb and .rpm (packaging/build-*.sh over the published artifacts/, as `make deb rpm` does) into a
/// temp directory, checks their contents and metadata with dpkg-deb and rpm, and installs, runs and purges the
/// .deb on this machine (scripts/deb-install.sh).
/// </summary>
[Collection("packages")]
public class PackageTests
{
    private static readonly string Version = "0.0.0~test1";

    internal static string Build(string script, string dist)
    {
        Integration.Require(Integration.IsRoot, "needs root");
        var art = Path.Combine(Node.RepoRoot, "artifacts");
        Integration.Require(File.Exists(Path.Combine(art, "daemon", "diffkeeperd")) && File.Exists(Path.Combine(art, "cli", "diffkeeper")) &&
                     File.Exists(Path.Combine(art, "shim", "containerd-shim-diffkeeper-v1")), "artifacts/ is not published: run `make build` first");
        var (code, o, e) = Node.Run(Path.Combine(Node.RepoRoot, "packaging", script), [],
            new Dictionary<string, string> { ["VERSION"] = Version, ["ART"] = art, ["DIST"] = dist }, 300_000);
        Assert.True(code == 0, $"{script} failed: {e}\n{o}");
        var path = Path.Combine(Node.RepoRoot, o.Trim().Split('\n')[^1]);
        Assert.True(File.Exists(path), path);
        return path;
    }

    private static readonly string[] Payload =
    [
        "/usr/bin/containerd-shim-diffkeeper-v1", "/usr/bin/diffkeeperd", "/usr/bin/diffkeeper",
        "/usr/lib/diffkeeper/diffkeeperd", "/usr/lib/diffkeeper/diffkeeper", "/usr/lib/diffkeeper/librocksdb.so",
        "/usr/lib/diffkeeper/diffkeeper.bpf.o", "/etc/diffkeeper/config.toml",
        "/usr/share/diffkeeper/containerd/diffkeeper-runtime.toml", "/usr/share/diffkeeper/kubernetes/runtimeclass.yaml",
        "/usr/share/bash-completion/completions/diffkeeper", "/usr/share/doc/diffkeeper/README.md",
        "/usr/lib/diffkeeper/libbpf/libbpf.so.1", "/usr/share/doc/diffkeeper/libbpf.copyright",
        "/usr/share/fish/vendor_completions.d/diffkeeper.fish", "/usr/share/man/man1/diffkeeper.1.gz",
        "/usr/share/man/man8/diffkeeperd.8.gz", "/usr/share/man/man8/containerd-shim-diffkeeper-v1.8.gz",
    ];

    [SkippableFact]
    public void Deb_HasTheFilesDependenciesConffileAndScripts()
    {
        Integration.Require(Integration.HasTool("dpkg-deb") && Integration.HasTool("dpkg-shlibdeps"), "needs dpkg-dev");
        using var t = new TempDir("dk-node-");
        var deb = Build("build-deb.sh", t.Path);
        Assert.Equal($"diffkeeper_{Version}_amd64.deb", Path.GetFileName(deb));
        var info = Node.Ok("dpkg-deb", "-I", deb);
        Assert.Contains("Package: diffkeeper", info);
        Assert.Contains($"Version: {Version}", info);
        Assert.Contains("Architecture: amd64", info);
        var depends = info.Split('\n').Single(l => l.StartsWith(" Depends: ")).Trim();
        // libbpf: bundled (its own libraries are hard dependencies), the distribution's only recommended.
        Assert.DoesNotContain("libbpf", depends);
        Assert.Contains("libelf1", depends);
        Assert.Contains("zlib1g", depends);
        Assert.Equal("Recommends: libbpf1 (>= 1:1.0)", info.Split('\n').Single(l => l.StartsWith(" Recommends: ")).Trim());
        Assert.Contains("containerd (>= 1.6) | containerd.io (>= 1.6)", depends);
        Assert.Contains("libc6", depends);
        // No .NET runtime on the node: the binaries are Native AOT.
        Assert.DoesNotContain("dotnet", depends);
        foreach (var s in new[] { "postinst", "prerm", "postrm", "conffiles", "md5sums" }) Assert.Contains(s, info);
        Assert.Equal("/etc/diffkeeper/config.toml", ReadControl(deb, "conffiles").Trim());
        var postinst = ReadControl(deb, "postinst");
        Assert.Contains("enable", postinst);
        Assert.DoesNotContain("/etc/containerd", postinst.Split('\n').Where(l => !l.TrimStart().StartsWith('#')).Aggregate("", (a, b) => a + b));
        Assert.Contains("rm -rf /var/lib/diffkeeper", ReadControl(deb, "postrm"));

        var contents = Node.Ok("dpkg-deb", "-c", deb);
        foreach (var f in Payload.Append("/lib/systemd/system/diffkeeperd.service").Append("/usr/share/zsh/vendor-completions/_diffkeeper"))
            Assert.Contains("." + f, contents);
        Assert.Contains("./usr/bin/diffkeeperd -> ../lib/diffkeeper/diffkeeperd", contents);
        Assert.DoesNotContain(".dbg", contents);
        Assert.DoesNotContain(".pdb", contents);

        // The unit: Type=notify, restart on failure, state and runtime directories.
        var x = t["x"];
        Node.Ok("dpkg-deb", "-x", deb, x);
        var unit = File.ReadAllText(Path.Combine(x, "lib/systemd/system/diffkeeperd.service"));
        foreach (var l in new[] { "Type=notify", "Restart=on-failure", "StateDirectory=diffkeeper", "RuntimeDirectory=diffkeeper", "ExecStart=/usr/bin/diffkeeperd" })
            Assert.Contains(l, unit);
        // Self-contained: the AOT daemon needs only libc/libm (and no hostfxr, which a framework-dependent app would).
        var needed = Node.Ok("readelf", "-d", Path.Combine(x, "usr/lib/diffkeeper/diffkeeperd"));
        Assert.DoesNotContain("hostfxr", needed);
        Assert.DoesNotContain("coreclr", needed);
        Assert.DoesNotContain("System.Private.CoreLib.dll", Node.Ok("sh", "-c", $"cd {x} && find ."));
        // The generated completion and man page are the real thing (the CLI tests check them in depth).
        Assert.Contains("complete -F _diffkeeper diffkeeper", File.ReadAllText(Path.Combine(x, "usr/share/bash-completion/completions/diffkeeper")));
        Assert.Contains(".SS export", Node.Ok("sh", "-c", $"gzip -dc {x}/usr/share/man/man1/diffkeeper.1.gz"));
    }

    private static string ReadControl(string deb, string name) => Node.Ok("dpkg-deb", "-I", deb, name);

    [SkippableFact]
    public void Rpm_HasTheFilesRequiresConfigAndScripts()
    {
        Integration.Require(Integration.HasTool("rpmbuild") && Integration.HasTool("rpm"), "needs rpm (Debian's package provides rpmbuild)");
        using var t = new TempDir("dk-node-");
        var rpm = Build("build-rpm.sh", t.Path);
        Assert.Equal($"diffkeeper-{Version}.x86_64.rpm", Path.GetFileName(rpm));
        var info = Node.Ok("rpm", "-qip", rpm);
        Assert.Contains("diffkeeper", info);
        Assert.Contains("x86_64", info);
        var files = Node.Ok("rpm", "-qlp", rpm);
        foreach (var f in Payload.Append("/usr/lib/systemd/system/diffkeeperd.service").Append("/usr/share/zsh/site-functions/_diffkeeper"))
            Assert.Contains(f + "\n", files);
        Assert.DoesNotContain(".dbg", files);
        var requires = Node.Ok("rpm", "-qRp", rpm);
        Assert.DoesNotContain("libbpf", requires);
        Assert.Contains("libelf.so.1()(64bit)", requires);
        Assert.Contains("libbpf >= 1.0", Node.Ok("rpm", "-qp", "--recommends", rpm));
        // The bundled libbpf.so.1 is private too.
        Assert.DoesNotContain("libbpf", Node.Ok("rpm", "-qp", "--provides", rpm));
        Assert.Contains("(containerd or containerd.io)", requires);
        Assert.DoesNotContain("dotnet", requires);
        // AutoReqProv off: the private librocksdb.so is not offered to other packages.
        Assert.DoesNotContain("librocksdb", Node.Ok("rpm", "-qp", "--provides", rpm));
        Assert.Contains("/etc/diffkeeper/config.toml", Node.Ok("rpm", "-qcp", rpm));
        var scripts = Node.Ok("rpm", "-qp", "--scripts", rpm);
        Assert.Contains("systemctl enable diffkeeperd.service", scripts);
        Assert.DoesNotContain("/etc/containerd", scripts);
    }

    [SkippableFact]
    public void Deb_InstallsRunsAContainerAndPurgesCleanly()
    {
        Integration.Require(Integration.HasTool("dpkg") && Integration.HasTool("containerd") && Integration.HasTool("ctr") && File.Exists("/bin/busybox"),
            "needs dpkg, containerd, ctr and busybox-static");
        Integration.Require(Node.Run("dpkg-query", ["-W", "-f=${Status}", "libbpf1"]).Out.Contains("installed"), "needs libbpf1 (a dependency of the package)");
        using var t = new TempDir("dk-node-");
        var deb = Build("build-deb.sh", t.Path);
        var (code, o, e) = Node.Run("bash", [Node.Script("deb-install.sh"), deb, Node.RepoRoot], timeoutMs: 300_000);
        // 77: the machine already has what the package owns (another installation, or another suite's files in
        // /var/lib/diffkeeper): a missing prerequisite, not ours to delete.
        Integration.Require(code != 77, "the machine is not clean for a package install: " + o.Trim());
        Assert.True(code == 0 && o.TrimEnd().EndsWith("OK"), $"deb-install.sh exit {code}:\n{o}\n{e}");
        Assert.Contains("CHECK container ran under the installed shim", o);
        Assert.Contains("CHECK purged: nothing left", o);
        // Left clean whatever happened: the script's trap purges and stops what it started.
        Assert.False(Directory.Exists("/etc/diffkeeper"));
        Assert.False(Directory.Exists("/var/lib/diffkeeper"));
        Assert.NotEqual(0, Node.Run("dpkg", ["-s", "diffkeeper"]).Code);
        if (o.Contains("SKIP-RECORDING")) Skip.If(true, "installed and purged fine; the recording was not checked: this tree's shim has no recorder hook");
    }

    [SkippableFact]
    public void Rpm_InstallsIntoARootRunsARecordedContainerWithTheBundledLibbpfAndErasesCleanly()
    {
        Integration.Require(Integration.HasTool("rpm") && Integration.HasTool("unshare") && Integration.HasTool("chroot") && Integration.HasTool("systemctl") &&
                     Integration.HasTool("containerd") && Integration.HasTool("ctr") && File.Exists("/bin/busybox"),
            "needs rpm, unshare, chroot, systemctl, containerd, ctr and busybox-static");
        using var t = new TempDir("dk-node-");
        var rpm = Build("build-rpm.sh", t.Path);
        var (code, o, e) = Node.Run("unshare", ["-m", "--propagation", "private", "bash", Node.Script("rpm-install.sh"), rpm, Node.RepoRoot], timeoutMs: 300_000);
        Assert.True(code == 0 && o.TrimEnd().EndsWith("OK"), $"rpm-install.sh exit {code}:\n{o}\n{e}");
        Assert.Contains("CHECK %post enabled diffkeeperd.service", o);
        Assert.Contains("CHECK erased with scriptlets", o);
        Assert.Contains("CHECK daemon from the rpm root: capture ready, bundled libbpf mapped", o);
        Assert.Contains("CHECK recorded by the rpm root's daemon", o);
        Assert.Contains("CHECK rpm -e --root removed every file it installed", o);
    }
}
