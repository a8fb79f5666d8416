using System.Diagnostics;
using System.Text;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>What an external command did: exit code, both streams, and whether we had to kill it.</summary>
public sealed record CommandResult(string Command, int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
{
    public string Output => Stdout + Stderr;

    public override string ToString() =>
        $"`{Command}` -> exit {ExitCode}{(TimedOut ? " (TIMED OUT, killed)" : "")} in {Elapsed.TotalMilliseconds:F0} ms\n" +
        $"--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs external programs with a hard timeout. A hung ctr or shim must fail a test, never hang CI,
/// so every call has a deadline and a timed-out process tree is killed.
/// </summary>
public static class ExternalCommand
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static async Task<CommandResult> RunAsync(
        string fileName, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null,
        IDictionary<string, string>? env = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        if (workingDirectory != null) psi.WorkingDirectory = workingDirectory;
        var display = fileName + " " + string.Join(' ', psi.ArgumentList);

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + display);
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        try
        {
            if (stdin != null) await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        catch (IOException) { /* the program did not read its stdin: fine */ }

        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var timedOut = false;
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            timedOut = true;
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await p.WaitForExitAsync();
        }
        // A daemon that inherited our pipes would keep these open forever: bound the wait.
        var streams = Task.WhenAll(stdoutTask, stderrTask);
        var stdout = "";
        var stderr = "";
        if (await Task.WhenAny(streams, Task.Delay(TimeSpan.FromSeconds(5))) == streams)
        {
            stdout = stdoutTask.Result;
            stderr = stderrTask.Result;
        }
        else
        {
            stderr = "<output pipes still held open by a descendant after exit>";
        }
        return new CommandResult(display, timedOut ? -1 : p.ExitCode, stdout, stderr, timedOut, sw.Elapsed);
    }

    public static Task<CommandResult> RunAsync(string fileName, params string[] args) => RunAsync(fileName, args, null);
}

/// <summary>
/// A long-running child (ctr events, an attached ctr run) whose output lines are collected with arrival times.
/// Stopped by pid, never by name.
/// </summary>
public sealed class BackgroundProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<(DateTime At, string Line)> _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly object _gate = new();

    public BackgroundProcess(string fileName, IEnumerable<string> args, bool redirectStdin = false)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Command = fileName + " " + string.Join(' ', psi.ArgumentList);
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (_gate) _stdout.Add((DateTime.UtcNow, e.Data));
            LineReceived?.Invoke(e.Data);
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_gate) _stderr.AppendLine(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Command { get; }
    public int Pid => _process.Id;
    public event Action<string>? LineReceived;
    public StreamWriter StandardInput => _process.StandardInput;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public IReadOnlyList<(DateTime At, string Line)> Lines { get { lock (_gate) return _stdout.ToList(); } }
    public string Stdout { get { lock (_gate) return string.Join('\n', _stdout.Select(l => l.Line)); } }
    public string Stderr { get { lock (_gate) return _stderr.ToString(); } }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); return true; }
        catch (OperationCanceledException) { return false; }
    }

    public async Task<bool> WaitForOutputAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Lines.Any(l => match(l.Line))) return true;
            await Task.Delay(20);
        }
        return Lines.Any(l => match(l.Line));
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }

    public override string ToString() => $"`{Command}` (pid {Pid})\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}
