using System.Diagnostics;
using DiffKeeper.Shim.Protos.Task;
using Xunit;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>Subcommands of the real binary that need no socket: <c>delete</c>'s raw DeleteResponse and <c>-v</c>.</summary>
public class ShimSubcommandTests
{
    private static async Task<(int Exit, byte[] Stdout, string Stderr)> RunAsync(string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(await Binaries.RequireOrPublishAsync(Binaries.Shim, "src/DiffKeeper.Shim"))
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = process.StandardError.ReadToEndAsync();
        // containerd kills delete after 5 s.
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        await copy;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }

    [Fact]
    public async Task Delete_prints_a_raw_DeleteResponse_with_pid_137_and_now()
    {
        using var dir = new TempDir("dks-");
        var bundle = dir.Sub("bundle");
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        File.WriteAllText(Path.Combine(bundle, "init.pid"), "4242");
        // Keep runc's state in the temp dir: this container never existed, so runc delete --force has nothing to do.
        File.WriteAllText(Path.Combine(bundle, "diffkeeper-shim.state"), $"runc_binary=runc\nrunc_root={dir.Sub("runc")}\n");
        var before = DateTime.UtcNow;

        var (exit, stdout, stderr) = await RunAsync(bundle,
            "-namespace", "dk-del", "-address", dir.Sub("c.sock"), "-publish-binary", "/bin/true", "-id", "gone",
            "-bundle", bundle, "delete");

        Assert.True(exit == 0, $"delete exited {exit}: {stderr}");
        // Unframed protobuf: field 1 (pid) varint, field 2 (exit_status) = 137 as 0x10 0x89 0x01, field 3 timestamp.
        Assert.Equal(new byte[] { 0x08, 0x92, 0x21, 0x10, 0x89, 0x01, 0x1A }, stdout.Take(7).ToArray());
        var response = DeleteResponse.Parser.ParseFrom(stdout);
        Assert.Equal(4242u, response.Pid);
        Assert.Equal(137u, response.ExitStatus);
        Assert.InRange(response.ExitedAt.ToDateTime(), before.AddSeconds(-1), DateTime.UtcNow.AddSeconds(1));
    }

    [Fact]
    public async Task Delete_without_init_pid_reports_pid_zero()
    {
        using var dir = new TempDir("dks-");
        File.WriteAllText(dir.Sub("diffkeeper-shim.state"), $"runc_root={dir.Sub("runc")}\n");

        var (exit, stdout, stderr) = await RunAsync(dir.Path,
            "-namespace", "dk-del", "-address", dir.Sub("c.sock"), "-publish-binary", "/bin/true", "-id", "never", "delete");

        Assert.True(exit == 0, $"delete exited {exit}: {stderr}");
        var response = DeleteResponse.Parser.ParseFrom(stdout);
        Assert.Equal(0u, response.Pid);
        Assert.Equal(137u, response.ExitStatus);
        Assert.NotNull(response.ExitedAt);
    }

    [Fact]
    public async Task Version_flag_prints_the_version()
    {
        using var dir = new TempDir("dks-");
        var (exit, stdout, _) = await RunAsync(dir.Path, "-v");
        Assert.Equal(0, exit);
        var text = System.Text.Encoding.UTF8.GetString(stdout);
        Assert.Contains("containerd-shim-diffkeeper-v1", text);
        Assert.Contains("Version:", text);
    }
}
