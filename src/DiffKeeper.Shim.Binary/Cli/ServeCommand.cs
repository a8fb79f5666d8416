using System.Net.Sockets;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Service;
using DiffKeeper.Ttrpc;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// The serving shim (no action): spawned by <c>start</c> with the listening socket on fd 3, in the bundle
/// directory. Logs to the bundle's <c>log</c> FIFO, serves the task API until Shutdown finds no container left,
/// then flushes events, removes its socket and exits.
/// </summary>
internal static class ServeCommand
{
    private const int ListenerFd = 3;

    public static async Task<int> RunAsync(ShimFlags flags, RecorderSettings recorderSettings)
    {
        RedirectStderrToLogFifo();
        ShimLog.Debug = flags.Debug;

        var listener = new Socket(new SafeSocketHandle(ListenerFd, ownsHandle: true));
        string? socketPath = (listener.LocalEndPoint as UnixDomainSocketEndPoint)?.ToString();
        // Nothing below uses relative paths; do not pin the first container's bundle as our working directory.
        LibC.chdir("/");

        var reaper = new Reaper();
        await using var events = new EventPublisher(Environment.GetEnvironmentVariable("TTRPC_ADDRESS"), flags.Namespace);
        using var host = ShimHost.WithRunc(flags.Namespace, reaper, events, RecorderHooks.Create(flags.Address, recorderSettings, "shim"), recorderSettings);
        reaper.Start();

        var server = new TtrpcServer();
        host.Register(server);
        using var stop = new CancellationTokenSource();
        var serving = server.ServeAsync(listener, stop.Token);
        ShimLog.Info($"serving {flags.Namespace}/{flags.Id} on {socketPath}");

        await Task.WhenAny(host.ShutdownRequested, serving);
        if (serving.IsFaulted) ShimLog.Error($"ttrpc server stopped: {serving.Exception?.GetBaseException().Message}");

        // Let the Shutdown reply leave, then deliver what is queued (TaskDelete of the last container).
        await Task.Delay(20);
        await Task.WhenAll(events.FlushAsync(TimeSpan.FromSeconds(3)), host.Recorder.FlushAsync(recorderSettings.Timeout));
        if (socketPath != null) { try { File.Delete(socketPath); } catch (IOException) { } }
        stop.Cancel();
        var disposing = server.DisposeAsync().AsTask();
        await Task.WhenAny(disposing, Task.Delay(500));
        Environment.Exit(0);
        return 0;
    }

    /// <summary>
    /// containerd created the <c>log</c> FIFO and holds it open for reading; make it our stderr. Non-blocking, so
    /// a full or reader-less FIFO (containerd restarting) costs a log line, never a stuck shim.
    /// </summary>
    private static void RedirectStderrToLogFifo()
    {
        int fd = LibC.open("log", LibC.O_WRONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (fd < 0) return;
        LibC.dup2(fd, 2);
        LibC.close(fd);
    }
}
