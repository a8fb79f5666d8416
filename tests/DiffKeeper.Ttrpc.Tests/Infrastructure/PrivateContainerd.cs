using System.Diagnostics;
using System.Net.Sockets;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>
/// A containerd of our own (root, state and sockets in a temp directory, CRI off) so tests never touch the
/// system daemon. Dispose kills it by pid and removes everything, whatever happened in the test.
/// </summary>
public sealed class PrivateContainerd : IDisposable
{
    private readonly Process _process;
    private readonly StringWriter _log = new();

    private PrivateContainerd(string directory, Process process)
    {
        WorkDirectory = directory;
        _process = process;
    }

    public string WorkDirectory { get; }
    public string GrpcSocket => Path.Combine(WorkDirectory, "c.sock");
    /// <summary>containerd serves ttrpc (events for shims) next to the gRPC socket.</summary>
    public string TtrpcSocket => GrpcSocket + ".ttrpc";
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<PrivateContainerd> StartAsync(string containerdPath)
    {
        var directory = Directory.CreateTempSubdirectory("dk-ttrpc-ctd-").FullName;
        var config = Path.Combine(directory, "config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{directory}/root"
            state = "{directory}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "{directory}/c.sock"
            [debug]
              address = ""
            [metrics]
              address = ""
            """);
        var start = new ProcessStartInfo(containerdPath, ["--config", config])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("containerd did not start");
        }
        catch
        {
            Directory.Delete(directory, recursive: true);
            throw;
        }
        var instance = new PrivateContainerd(directory, process);
        process.OutputDataReceived += (_, e) => instance.Append(e.Data);
        process.ErrorDataReceived += (_, e) => instance.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await instance.WaitUntilServingAsync();
        }
        catch
        {
            instance.Dispose();
            throw;
        }
        return instance;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.WriteLine(line);
    }

    private async Task WaitUntilServingAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"containerd exited ({_process.ExitCode}):\n{Log}");
            if (File.Exists(TtrpcSocket))
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await probe.ConnectAsync(new UnixDomainSocketEndPoint(TtrpcSocket));
                    return;
                }
                catch (SocketException) { }
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"containerd not serving after 30 s:\n{Log}");
            await Task.Delay(50);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(); // this pid only; it started no shims
                _process.WaitForExit(10_000);
            }
        }
        finally
        {
            _process.Dispose();
            try { Directory.Delete(WorkDirectory, recursive: true); } catch (IOException) { }
        }
    }
}
