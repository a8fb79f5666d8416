using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;

namespace DiffKeeper.Shim.Io;

/// <summary>
/// <c>binary://</c> stdio: a logging binary reads the container's stdout on fd 3 and stderr on fd 4 and closes
/// fd 5 when it is ready, as containerd's shims define it. Env CONTAINER_ID / CONTAINER_NAMESPACE name the task.
/// </summary>
internal static class BinaryLogger
{
    public static (int Stdout, int Stderr) Start(StdioUri uri, string ns, string id, Reaper reaper, List<FileDescriptor> containerEnds)
    {
        var (outRead, outWrite) = FileDescriptor.Pipe();
        var (errRead, errWrite) = FileDescriptor.Pipe();
        var (readyRead, readyWrite) = FileDescriptor.Pipe();
        containerEnds.Add(outWrite);
        containerEnds.Add(errWrite);
        try
        {
            var args = new List<string> { uri.Path };
            foreach (var (key, value) in uri.Query)
            {
                args.Add(key);
                if (value.Length > 0) args.Add(value);
            }
            Spawner.Spawn(reaper, new SpawnRequest
            {
                File = uri.Path,
                Args = args,
                Fds = [null, null, null, outRead.Value, errRead.Value, readyWrite.Value],
                Environment = new Dictionary<string, string?> { ["CONTAINER_ID"] = id, ["CONTAINER_NAMESPACE"] = ns },
            }, out _);
        }
        finally
        {
            outRead.Dispose();
            errRead.Dispose();
            readyWrite.Dispose();
        }
        using (readyRead) WaitReady(readyRead);
        return (outWrite.Value, errWrite.Value);
    }

    private static unsafe void WaitReady(FileDescriptor ready)
    {
        var poll = new LibC.PollFd { Fd = ready.Value, Events = LibC.POLLIN };
        var deadline = Environment.TickCount64 + 10_000;
        byte b;
        while (Environment.TickCount64 < deadline)
        {
            poll.Revents = 0;
            if (LibC.poll(&poll, 1, (int)Math.Max(1, deadline - Environment.TickCount64)) <= 0) continue;
            if (LibC.read(ready.Value, &b, 1) <= 0) return; // closed: the logger is ready (or died)
        }
        throw new TimeoutException("logging binary did not signal readiness");
    }
}
