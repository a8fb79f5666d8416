using DiffKeeper.Shim.IntegrationTests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace DiffKeeper.Shim.IntegrationTests.Conformance;

/// <summary>
/// The runc options a node sets, end to end through containerd, on the stock shim and on ours (issue 8). Each
/// runtime gets them as containerd.runc.v1.Options task options (containerd's Go client; CRI for runc runtimes);
/// ours also as runtimeoptions.v1.Options carrying the same names as TOML, from a file (`ctr --runtime-config-path`)
/// or inline (containerd 1.7+ CRI). Tasks are created over containerd's gRPC API because `ctr` sends runc options
/// only to io.containerd.runc.v2.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class RuntimeOptionsTests(ContainerdFixture fixture, ITestOutputHelper output) : ChecklistTest(fixture)
{
    /// <summary>`ctr c create` with the options in <paramref name="form"/>, then Tasks.Create and Tasks.Start.</summary>
    private async Task StartWithOptionsAsync(string runtime, string form, string id, TestRuncOptions options,
        string stdout = "", params string[] args)
    {
        var create = new List<string> { "container", "create", "--runtime", runtime };
        if (form == OptionForms.ConfigPath)
        {
            var file = Path.Combine(Fx.Root, id + ".toml");
            File.WriteAllText(file, options.ToToml());
            create.AddRange(["--runtime-config-path", file]);
        }
        create.AddRange([Image, id, "--"]);
        create.AddRange(args);
        AssertExit(await Ctr(create.ToArray()), 0);

        using var grpc = new ContainerdGrpc(Containerd.Address, PrivateContainerd.Namespace);
        var rootfs = await grpc.SnapshotMountsAsync(id);
        var (type, value) = form switch
        {
            OptionForms.RuncOptions => ("containerd.runc.v1.Options", options.ToProto()),
            OptionForms.ConfigBody => ("runtimeoptions.v1.Options", OptionForms.RuntimeOptionsWithBody(options.ToToml())),
            _ => ((string?)null, (byte[]?)null), // the container's runtime options stand in (containerd's fallback)
        };
        await grpc.CreateTaskAsync(id, rootfs, type, value, stdout, stdout);
        await grpc.StartTaskAsync(id);
    }

    [SkippableTheory, MemberData(nameof(OptionForms.All), MemberType = typeof(OptionForms))]
    public async Task Options01_ShimCgroup_TheShimServesFromThatCgroup(string runtime, string form)
    {
        Fx.Require(runtime);
        var id = NewId("o01", runtime, form);
        using var cgroup = new TestCgroup("dk-shimcg-" + id);
        await StartWithOptionsAsync(runtime, form, id, new TestRuncOptions { ShimCgroup = cgroup.CgroupPath }, args: ["sleep", "1000"]);
        await Fx.WaitForStatusAsync(id, "RUNNING");

        var shim = await Fx.ShimPidAsync(id);
        foreach (var dir in cgroup.MemberDirs)
            Assert.True(TestCgroup.Procs(dir).Contains(shim), $"shim {shim} is not in {dir} (its cgroups:\n{File.ReadAllText($"/proc/{shim}/cgroup")})");
        // Upstream moves the shim only through the v1 hierarchies on a hybrid host; pinned so we do the same.
        foreach (var dir in cgroup.NonMemberDirs)
            Assert.False(TestCgroup.Procs(dir).Contains(shim), $"shim {shim} was put in {dir}, which the stock shim leaves alone");

        await KillAndRemoveAsync(id);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(OptionForms.All), MemberType = typeof(OptionForms))]
    public async Task Options02_ShimCgroup_ThatDoesNotExist_FailsTheStart_WithUpstreamsError(string runtime, string form)
    {
        Fx.Require(runtime);
        var id = NewId("o02", runtime, form);
        var missing = "/dk-no-such-cgroup-" + id;
        await AssertTaskFailsAsync(runtime, form, id, new TestRuncOptions { ShimCgroup = missing },
            $"failed to load cgroup {missing}: cgroups: cgroup deleted");
    }

    /// <summary>Starting a task with <paramref name="options"/> fails with every one of <paramref name="expected"/>; nothing is left.</summary>
    private async Task AssertTaskFailsAsync(string runtime, string form, string id, TestRuncOptions options, params string[] expected)
    {
        var e = await Assert.ThrowsAsync<ContainerdGrpcException>(() => StartWithOptionsAsync(runtime, form, id, options, args: ["true"]));
        output.WriteLine($"{runtime}/{form}: {e.Detail}");
        foreach (var text in expected) AssertContains(text, e.Detail);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(OptionForms.All), MemberType = typeof(OptionForms))]
    public async Task Options03_BinaryName_Root_NoPivotRoot_NoNewKeyring_CriuPath_ReachEveryRuntimeCall(string runtime, string form)
    {
        Fx.Require(runtime);
        var id = NewId("o03", runtime, form);
        var wrapper = new RuncWrapper(Fx.Root, "runc-wrapper-" + id);
        var root = Path.Combine("/run", "dk-runc-root-" + id);
        try
        {
            var options = new TestRuncOptions
            {
                BinaryName = wrapper.Path, Root = root, NoPivotRoot = true, NoNewKeyring = true, CriuPath = "/usr/sbin/criu",
            };
            await StartWithOptionsAsync(runtime, form, id, options, args: ["sleep", "1000"]);
            await Fx.WaitForStatusAsync(id, "RUNNING");
            // runc keeps the container's state under the options' Root, per namespace.
            Assert.True(File.Exists(Path.Combine(root, PrivateContainerd.Namespace, id, "state.json")), $"no runc state under {root}");
            Assert.False(Directory.Exists(PrivateContainerd.RuncStateDir(id)), "runc state in the default root too");
            await KillAndRemoveAsync(id);
            await AssertNothingLeftBehindAsync(id);

            var calls = wrapper.Calls();
            output.WriteLine($"{runtime}/{form}:\n  " + string.Join("\n  ", calls.Select(c => string.Join(' ', c))));
            var subcommands = calls.Select(Subcommand).ToList();
            foreach (var expected in new[] { "create", "start", "kill", "delete" })
                Assert.Contains(expected, subcommands);
            foreach (var call in calls)
            {
                Assert.Equal(["--root", Path.Combine(root, PrivateContainerd.Namespace)], call.Take(2));
                // The `delete` subcommand's cleanup (`delete --force`) runs without criu in both shims.
                if (call.Contains("--force")) continue;
                Assert.Contains("--criu", call);
                Assert.Equal("/usr/sbin/criu", call[Array.IndexOf(call, "--criu") + 1]);
            }
            var create = calls.Single(c => Subcommand(c) == "create");
            Assert.Contains("--no-pivot", create);
            Assert.Contains("--no-new-keyring", create);
            Assert.False(Directory.Exists(Path.Combine(root, PrivateContainerd.Namespace, id)), "runc state left under the options' Root");
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The runc subcommand of a logged call: the first argument after the global flags.</summary>
    private static string Subcommand(string[] argv)
    {
        for (int i = 0; i < argv.Length; i++)
        {
            if (argv[i] is "--root" or "--log" or "--log-format" or "--criu") { i++; continue; }
            if (argv[i].StartsWith('-')) continue;
            return argv[i];
        }
        return "";
    }

    [SkippableTheory, MemberData(nameof(OptionForms.All), MemberType = typeof(OptionForms))]
    public async Task Options04_BinaryName_NotInstalled_CreateFailsNamingIt(string runtime, string form)
    {
        // containerd's TestContainerRuntimeOptionsv2: the error must name the binary.
        Fx.Require(runtime);
        var id = NewId("o04", runtime, form);
        await AssertTaskFailsAsync(runtime, form, id, new TestRuncOptions { BinaryName = "dk-no-such-runc" },
            "OCI runtime create failed", "\"dk-no-such-runc\"");
    }

    [SkippableTheory, MemberData(nameof(OptionForms.All), MemberType = typeof(OptionForms))]
    public async Task Options05_IoUid_IoGid_OwnTheContainersStdioPipes(string runtime, string form)
    {
        Fx.Require(runtime);
        var id = NewId("o05", runtime, form);
        var outFile = Path.Combine(Fx.Root, id + ".out");
        await StartWithOptionsAsync(runtime, form, id, new TestRuncOptions { IoUid = 1234, IoGid = 5678 }, "file://" + outFile,
            "stat", "-L", "-c", "%u:%g", "/proc/self/fd/1", "/proc/self/fd/2");
        await Fx.WaitForStatusAsync(id, "STOPPED");
        await RemoveTaskAndContainerAsync(id);
        // The shim hands runc pipes owned by IoUid:IoGid; runc's init then gives the owner to the container's user
        // (fixStdioPermissions: root here) and keeps the group. Both shims: "0:5678" (without the options "0:0").
        Assert.Equal(["0:5678", "0:5678"], File.ReadAllLines(outFile));
        await AssertNothingLeftBehindAsync(id);
    }

    [SkippableTheory, MemberData(nameof(ShimRuntimes.All), MemberType = typeof(ShimRuntimes))]
    public async Task Options06_SystemdCgroup_WithoutSystemd_FailsWithRuncsOwnError(string runtime)
    {
        // Kubernetes' systemd cgroup driver: cgroupsPath "slice:prefix:name" and runc --systemd-cgroup. Where systemd
        // is not PID 1 runc's own error must come through, the same from both shims. `ctr` sends runc options to
        // runc.v2 (--runc-systemd-cgroup) and a config file to any other runtime (--runtime-config-path).
        Fx.Require(runtime);
        var id = NewId("o06", runtime);
        var flags = new List<string> { "run", "-d", "--runtime", runtime, "--cgroup", $"system.slice:dk:{id}" };
        if (runtime == ShimRuntimes.Runc) flags.Add("--runc-systemd-cgroup");
        else
        {
            var file = Path.Combine(Fx.Root, id + ".toml");
            File.WriteAllText(file, new TestRuncOptions { SystemdCgroup = true }.ToToml());
            flags.AddRange(["--runtime-config-path", file]);
        }
        var r = await Ctr(flags.Concat([Image, id, "true"]).ToArray());
        output.WriteLine($"{runtime}: {r}");
        Assert.NotEqual(0, r.ExitCode);
        AssertContains("OCI runtime create failed", r.Stderr, r);
        var runcError = RuncErrorOf(r.Stderr, id);
        Assert.False(string.IsNullOrEmpty(runcError), "no runc error in:\n" + r);
        SystemdErrors[runtime] = runcError;
        if (SystemdErrors.TryGetValue(ShimRuntimes.Runc, out var stock) && SystemdErrors.TryGetValue(ShimRuntimes.DiffKeeper, out var ours))
            Assert.Equal(stock, ours);
        AssertExit(await Ctr("container", "rm", id), 0);
        await AssertNothingLeftBehindAsync(id);
    }

    /// <summary>Errors seen per runtime in this run: the second runtime's must equal the first's.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> SystemdErrors = new();

    /// <summary>The runc message after "OCI runtime create failed: ", the container id and grpc suffix made neutral.</summary>
    private static string RuncErrorOf(string stderr, string id)
    {
        const string marker = "OCI runtime create failed: ";
        var at = stderr.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return "";
        var text = stderr[(at + marker.Length)..].Trim();
        foreach (var suffix in new[] { ": unknown", ": invalid argument" })
            if (text.EndsWith(suffix, StringComparison.Ordinal)) text = text[..^suffix.Length];
        return text.Replace(id, "<id>");
    }
}
