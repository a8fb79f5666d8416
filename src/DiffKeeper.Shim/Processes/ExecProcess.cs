using System.Text.Json.Nodes;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Runc;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// An exec'd process: Exec only records it (Created); Start launches it with <c>runc exec --detach</c>
/// (Running); its exit makes it Stopped; Delete removes it (legal moves: <see cref="ProcessMoves"/>). Its pid
/// becomes known only after runc returns, so its exit is claimed through the <see cref="ExitRouter"/> after
/// TaskExecStarted was published.
/// </summary>
internal sealed class ExecProcess : ContainerProcess
{
    private readonly byte[] _specJson;
    private readonly Func<ProcessState> _initState;

    public ExecProcess(string execId, StdioPaths stdio, byte[] specJson, Func<ProcessState> initState) : base(execId, stdio)
    {
        _specJson = specJson;
        _initState = initState;
    }

    protected override ProcessKind Kind => ProcessKind.Exec;

    /// <summary>An exec reports its container's pause while it runs.</summary>
    public override ProcessState ReportedState
    {
        get
        {
            var own = State;
            if (own != ProcessState.Running) return own;
            var init = _initState();
            return init is ProcessState.Paused or ProcessState.Pausing ? init : own;
        }
    }

    /// <summary>
    /// Starts the process. <paramref name="starting"/> runs once the state allows it; <paramref name="started"/> runs
    /// after the pid is known (publishes TaskExecStarted and claims the exit); <paramref name="failed"/> runs when
    /// runc could not start it.
    /// </summary>
    public async Task<int> StartAsync(IRuncRunner runc, string containerId, BundlePaths bundle, string ns, Reaper reaper,
        Action starting, Action<int> started, Action failed)
    {
        int pid = 0;
        await RunAsync(ProcessOperation.Start, async () =>
        {
            starting();
            var specFile = Path.Combine(Path.GetTempPath(), $"runc-process{Guid.NewGuid():N}");
            var pidFile = bundle.ExecPidFile(Id);
            ProcessIo? io = null;
            try
            {
                File.WriteAllBytes(specFile, ForceTerminal(_specJson, Stdio.Terminal));
                io = ProcessIo.Create(Stdio, ns, containerId, reaper, runc.Settings.IoUid, runc.Settings.IoGid);
                // Visible at once: opening the stdin FIFO lets the client finish writing and send CloseIO while
                // runc exec is still running, and that CloseIO must reach this process's stdin.
                AttachIo(io);
                await runc.ExecAsync(containerId, specFile, pidFile, io.ConsoleSocketPath, io.RuncStdio);
                io.ReleaseContainerEnds();
                io.AttachConsole();
                pid = BundlePaths.ReadPid(pidFile) ?? throw new IOException($"no pid in {pidFile}");
                MarkStarted(pid);
                started(pid);
            }
            catch (Exception e)
            {
                AttachIo(null);
                io?.Dispose();
                failed();
                if (e is RuncException)
                    throw TaskErrors.Unknown("OCI runtime exec failed: " + (runc.LastLoggedError() ?? e.Message));
                if (e is ProcessError) throw;
                throw TaskErrors.Unknown("OCI runtime exec failed: " + e.Message);
            }
            finally
            {
                try { File.Delete(specFile); } catch (IOException) { }
            }
        });
        return pid;
    }

    /// <summary>The runtime-spec Process JSON with <c>terminal</c> forced to what the request asked.</summary>
    private static byte[] ForceTerminal(byte[] json, bool terminal)
    {
        var node = JsonNode.Parse(json) as JsonObject ?? throw TaskErrors.InvalidArgument("exec spec is not a JSON object");
        node["terminal"] = JsonValue.Create(terminal);
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>Records the exit; false if it was already recorded.</summary>
    public bool OnExit(ProcessExit exit) => MarkExited(exit);

    public void Kill(int signal)
    {
        Check(ProcessOperation.Kill);
        if (LibC.kill(Pid, signal) != 0)
        {
            int errno = LibC.LastErrno;
            if (errno == LibC.ESRCH) throw TaskErrors.NotFound("process already finished");
            throw TaskErrors.Unknown($"exec kill error: errno {errno}");
        }
    }

    public Task DeleteAsync(BundlePaths bundle) => RunAsync(ProcessOperation.Delete, async () =>
    {
        if (Io != null)
        {
            await Io.WaitOutputAsync(TimeSpan.FromSeconds(2));
            Io.Dispose();
        }
        try { File.Delete(bundle.ExecPidFile(Id)); } catch (IOException) { }
    });
}
