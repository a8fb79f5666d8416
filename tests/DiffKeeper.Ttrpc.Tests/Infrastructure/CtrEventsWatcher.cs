using System.Diagnostics;
using System.Threading.Channels;

namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>Runs `ctr events` against a containerd and exposes the lines it prints. Killed by pid on dispose.</summary>
public sealed class CtrEventsWatcher : IDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();

    public CtrEventsWatcher(string ctrPath, string grpcSocket)
    {
        _process = Process.Start(new ProcessStartInfo(ctrPath, ["--address", grpcSocket, "events"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("ctr did not start");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Writer.TryWrite(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Writer.TryWrite("stderr: " + e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The first line containing <paramref name="marker"/>, or null if none came in time.</summary>
    public async Task<string?> WaitForLineAsync(string marker, TimeSpan within)
    {
        using var limit = new CancellationTokenSource(within);
        try
        {
            await foreach (var line in _lines.Reader.ReadAllAsync(limit.Token))
                if (line.Contains(marker, StringComparison.Ordinal)) return line;
        }
        catch (OperationCanceledException) { }
        return null;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        finally
        {
            _process.Dispose();
        }
    }
}
