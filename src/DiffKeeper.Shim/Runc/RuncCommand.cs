using System.Text;
using System.Text.Json;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;

namespace DiffKeeper.Shim.Runc;

/// <summary>
/// Runs the runc binary, one method per runc subcommand the shim uses. Global flags follow the runc shim:
/// <c>--root R --log B/log.json --log-format json</c>. Errors are taken from runc's JSON log (its last error line)
/// because stdio may belong to the container; otherwise from runc's combined output.
/// </summary>
internal sealed class RuncCommand(RuncSettings settings, Reaper reaper) : IRuncRunner
{
    public RuncSettings Settings => settings;

    public Task CreateAsync(string id, string bundle, string pidFile, string? consoleSocket, bool noPivot,
        bool noNewKeyring, RuncStdio stdio)
    {
        var args = new List<string> { "create", "--bundle", bundle, "--pid-file", pidFile };
        if (consoleSocket != null) { args.Add("--console-socket"); args.Add(consoleSocket); }
        if (noPivot) args.Add("--no-pivot");
        if (noNewKeyring) args.Add("--no-new-keyring");
        args.Add(id);
        return RunWithStdioAsync(args, stdio);
    }

    public Task ExecAsync(string id, string processSpecFile, string pidFile, string? consoleSocket, RuncStdio stdio)
    {
        var args = new List<string> { "exec", "--process", processSpecFile };
        if (consoleSocket != null) { args.Add("--console-socket"); args.Add(consoleSocket); }
        args.AddRange(["--detach", "--pid-file", pidFile, id]);
        return RunWithStdioAsync(args, stdio);
    }

    public Task StartAsync(string id) => RunCapturedAsync(["start", id]);
    public Task PauseAsync(string id) => RunCapturedAsync(["pause", id]);
    public Task ResumeAsync(string id) => RunCapturedAsync(["resume", id]);

    public Task KillAsync(string id, int signal, bool all) =>
        RunCapturedAsync(all ? ["kill", "--all", id, signal.ToString()] : ["kill", id, signal.ToString()]);

    public Task DeleteAsync(string id, bool force) =>
        RunCapturedAsync(force ? ["delete", "--force", id] : ["delete", id]);

    public Task UpdateAsync(string id, byte[] resourcesJson) =>
        RunCapturedAsync(["update", "--resources", "-", id], resourcesJson);

    /// <summary>Pids of every process in the container (<c>runc ps --format json</c>).</summary>
    public async Task<List<int>> PsAsync(string id)
    {
        var output = await RunCapturedAsync(["ps", "--format", "json", id]);
        var pids = new List<int>();
        using var doc = JsonDocument.Parse(output);
        if (doc.RootElement.ValueKind == JsonValueKind.Array)
            foreach (var e in doc.RootElement.EnumerateArray()) pids.Add(e.GetInt32());
        return pids;
    }

    private List<string> GlobalArgs()
    {
        var args = new List<string> { settings.Binary, "--root", settings.Root, "--log", settings.LogPath, "--log-format", "json" };
        if (settings.CriuPath.Length > 0) { args.Add("--criu"); args.Add(settings.CriuPath); }
        if (settings.SystemdCgroup) args.Add("--systemd-cgroup");
        return args;
    }

    /// <summary>
    /// Launches the runtime binary. A binary that cannot be run (a BinaryName typo) fails the way go-runc reports it,
    /// naming the binary (<c>exec: "no-runc": executable file not found in $PATH</c>), so the client sees which.
    /// </summary>
    private Task<ProcessExit> Spawn(SpawnRequest request)
    {
        try
        {
            return Spawner.Spawn(reaper, request, out _);
        }
        catch (ErrnoException e)
        {
            var binary = settings.Binary;
            if (!binary.Contains('/') && e.Errno == LibC.ENOENT)
                throw new RuncException($"exec: \"{binary}\": executable file not found in $PATH", -1);
            throw new RuncException($"fork/exec {binary}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(e.Errno).ToLowerInvariant()}", -1);
        }
    }

    /// <summary>runc with the container's stdio; the error comes from the JSON log.</summary>
    private async Task RunWithStdioAsync(List<string> subArgs, RuncStdio stdio)
    {
        var args = GlobalArgs();
        args.AddRange(subArgs);
        var exit = Spawn(new SpawnRequest
        {
            File = settings.Binary, Args = args, Fds = [stdio.Stdin, stdio.Stdout, stdio.Stderr],
        });
        var result = await exit.ConfigureAwait(false);
        if (result.Status != 0)
            throw new RuncException(LastLoggedError() ?? $"runc {subArgs[0]} exited with status {result.Status}", result.Status);
    }

    /// <summary>runc with stdout+stderr captured (and optional stdin data); returns stdout+stderr.</summary>
    private async Task<byte[]> RunCapturedAsync(List<string> subArgs, byte[]? stdinData = null)
    {
        var args = GlobalArgs();
        args.AddRange(subArgs);
        var (outRead, outWrite) = FileDescriptor.Pipe();
        FileDescriptor? inRead = null, inWrite = null;
        if (stdinData != null) (inRead, inWrite) = FileDescriptor.Pipe();
        Task<ProcessExit> exit;
        try
        {
            exit = Spawn(new SpawnRequest
            {
                File = settings.Binary, Args = args, Fds = [inRead?.Value, outWrite.Value, outWrite.Value],
            });
        }
        catch
        {
            outRead.Dispose(); inRead?.Dispose(); inWrite?.Dispose();
            throw;
        }
        finally
        {
            outWrite.Dispose();
            inRead?.Dispose();
        }

        // Blocking reads on a pool thread: runc's output is tiny and it exits promptly.
        var output = Task.Run(() => { using (outRead) return outRead.ReadToEnd(); });
        if (inWrite != null)
        {
            await Task.Run(() =>
            {
                using (inWrite) { try { inWrite.WriteAll(stdinData); } catch (IOException) { /* runc died early */ } }
            }).ConfigureAwait(false);
        }
        var result = await exit.ConfigureAwait(false);
        var bytes = await output.ConfigureAwait(false);
        if (result.Status != 0)
        {
            var text = Encoding.UTF8.GetString(bytes).Trim();
            throw new RuncException($"exit status {result.Status}: {text}", result.Status);
        }
        return bytes;
    }

    /// <summary>The message of the last <c>"level":"error"</c> line of runc's JSON log, like the runc shim.</summary>
    public string? LastLoggedError()
    {
        try
        {
            if (!File.Exists(settings.LogPath)) return null;
            string? last = null;
            foreach (var line in File.ReadLines(settings.LogPath))
            {
                if (line.Length == 0 || line[0] != '{') continue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    var root = doc.RootElement;
                    if (root.TryGetProperty("level", out var level) && level.GetString() == "error" &&
                        root.TryGetProperty("msg", out var msg))
                        last = msg.GetString()?.Trim();
                }
                catch (JsonException) { }
            }
            return last;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
