using System.Text.Json.Nodes;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Service;
using Status = DiffKeeper.Shim.Protos.TaskTypes.Status;

namespace DiffKeeper.Shim.Processes;

/// <summary>
/// An exec'd process: Exec only records it (Created); Start launches it with <c>runc exec --detach</c>
/// (Running); its exit makes it Stopped; Delete removes it. Its pid becomes known only after runc returns,
/// so its exit is claimed through the <see cref="ExitRouter"/> after TaskExecStarted was published.
/// </summary>
internal sealed class ExecProcess : ContainerProcess
{
    private readonly byte[] _specJson;
    private readonly Func<Status> _initStatus;

    public ExecProcess(string execId, StdioPaths stdio, byte[] specJson, Func<Status> initStatus) : base(execId, stdio)
    {
        _specJson = specJson;
        _initStatus = initStatus;
    }

    /// <summary>An exec reports its container's pause while it runs.</summary>
    public override Status ReportedStatus
    {
        get
        {
            var own = ToStatus(State);
            if (own != Status.Running) return own;
            var init = _initStatus();
            return init is Status.Paused or Status.Pausing ? init : own;
        }
    }

    /// <summary>
    /// Starts the process. <paramref name="starting"/> runs once the state allows it; <paramref name="started"/> runs after the pid is known (publishes TaskExecStarted and
    /// claims the exit); <paramref name="failed"/> runs when runc could not start it.
    /// </summary>
    public async Task<int> StartAsync(RuncCommand runc, string containerId, string bundle, string ns, Reaper reaper,
        Action starting, Action<int> started, Action failed)
    {
        await Operations.WaitAsync();
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Created: break;
                    case ProcessState.Running: throw TaskErrors.Unknown("cannot start a running process");
                    case ProcessState.Stopped: throw TaskErrors.Unknown("cannot start a stopped process");
                    default: throw TaskErrors.Unknown("cannot start a deleted process");
                }
            }
            starting();
            var specFile = Path.Combine(Path.GetTempPath(), $"runc-process{Guid.NewGuid():N}");
            var pidFile = Path.Combine(bundle, Id + ".pid");
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
                int pid = int.Parse(File.ReadAllText(pidFile).Trim());
                lock (Gate)
                {
                    Pid = pid;
                    State = ProcessState.Running;
                }
                started(pid);
                return pid;
            }
            catch (Exception e)
            {
                AttachIo(null);
                io?.Dispose();
                failed();
                if (e is RuncException)
                    throw TaskErrors.Unknown("OCI runtime exec failed: " + (runc.LastLoggedError() ?? e.Message));
                if (e is DiffKeeper.Ttrpc.TtrpcException) throw;
                throw TaskErrors.Unknown("OCI runtime exec failed: " + e.Message);
            }
            finally
            {
                try { File.Delete(specFile); } catch (IOException) { }
            }
        }
        finally
        {
            Operations.Release();
        }
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
        int pid;
        lock (Gate)
        {
            switch (State)
            {
                case ProcessState.Created: throw TaskErrors.FailedPrecondition("process not created");
                case ProcessState.Stopped: throw TaskErrors.NotFound("process already finished");
                case ProcessState.Deleted: throw TaskErrors.NotFound("cannot kill a deleted process");
            }
            pid = Pid;
        }
        if (LibC.kill(pid, signal) != 0)
        {
            int errno = LibC.LastErrno;
            if (errno == LibC.ESRCH) throw TaskErrors.NotFound("process already finished");
            throw TaskErrors.Unknown($"exec kill error: errno {errno}");
        }
    }

    public new void Resize(uint width, uint height)
    {
        lock (Gate)
        {
            if (State == ProcessState.Stopped) throw TaskErrors.Unknown("cannot resize a stopped container");
        }
        base.Resize(width, height);
    }

    public async Task DeleteAsync(string bundle)
    {
        await Operations.WaitAsync();
        try
        {
            lock (Gate)
            {
                switch (State)
                {
                    case ProcessState.Running: throw TaskErrors.Unknown("cannot delete a running process");
                    case ProcessState.Deleted: throw TaskErrors.NotFound("cannot delete a deleted process");
                }
            }
            if (Io != null)
            {
                await Io.WaitOutputAsync(TimeSpan.FromSeconds(2));
                Io.Dispose();
            }
            try { File.Delete(Path.Combine(bundle, Id + ".pid")); } catch (IOException) { }
            MarkDeleted();
        }
        finally
        {
            Operations.Release();
        }
    }
}
