using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Oci.Tests;

/// <summary>`replay` against a private containerd with the busybox image: the moment's files, the exit status, cleanup.</summary>
[Collection(CliCollection.Name)]
public sealed class ReplayTests(CliBinary binary) : IDisposable
{
    private readonly TempDir _tmp = new("dk-replay-test-");
    private DiffKeeperCli Cli => new(binary.Executable, _tmp.Sub("store"));

    public void Dispose() => _tmp.Dispose();

    [SkippableFact]
    public void Replay_runs_the_moment_on_containerd_and_leaves_nothing_behind()
    {
        Env.RequireRoot();
        Integration.Require(Integration.HasTool("containerd") && Integration.HasTool("ctr") && Integration.HasTool("runc"), "needs containerd, ctr and runc");
        Integration.Require(File.Exists(BusyboxArchive.Busybox), "needs busybox-static");
        var up = _tmp.Sub("upper");
        Posix.MkDir(up);
        Posix.MkDir(up + "/data");
        Posix.WriteFile(up + "/data/a", "hello at 0s\n"u8);
        Posix.MkDir(up + "/etc");
        Posix.MkWhiteout(up + "/etc/gone");
        Cli.Run("snapshot", up, "--recording", "app", "--at", "2026-11-30T10:00:00Z").ExpectOk();
        Posix.Unlink(up + "/data/a");
        Posix.WriteFile(up + "/data/a", "changed at 2s\n"u8);
        Cli.Run("snapshot", up, "--recording", "app", "--at", "2s").ExpectOk();
        var (_, baseTar) = BusyboxArchive.Write(_tmp.Sub("base.tar"));

        const string script = """
            dkctr image import "$1" >&2
            rp() { "$DK_CLI" --store "$DK_STORE" replay app --image localhost/dk-base:1 --address "$DK_SOCK" --namespace "$DK_NS" "$@"; }
            rp --at 1s -- sh -c 'cat /data/a /opt/other/o; ls /etc'
            rp -- cat /data/a
            rp --at 1s -- sh -c 'exit 7' && exit 9
            echo "exit $?"
            echo "containers: $(dkctr containers ls -q | wc -l) leases: $(dkctr leases ls -q | wc -l) snapshots: $(dkctr snapshots ls | tail -n +2 | wc -l)"
            rp --keep --name kept -- true
            echo "kept: $(dkctr containers ls -q) snapshots: $(dkctr snapshots ls | tail -n +2 | wc -l)"
            """;
        var run = Tools.WithPrivateContainerd(_tmp.Sub("containerd"), script, [baseTar],
            new Dictionary<string, string> { ["DK_CLI"] = binary.Executable, ["DK_STORE"] = Cli.Store });
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Equal(
            "hello at 0s\nuntouched\npasswd\n" +   // the state at 1s over the image: /etc/gone whited out
            "changed at 2s\n" +                     // default --at end
            "exit 7\n" +                             // the container's exit status is ours
            "containers: 0 leases: 0 snapshots: 1\n" + // only the image's own snapshot remains
            "kept: kept snapshots: 3\n",
            run.Stdout);
        Assert.False(Directory.Exists(_tmp.Sub("containerd")));
    }
}
