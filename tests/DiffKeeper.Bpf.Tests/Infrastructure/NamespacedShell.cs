using System.Diagnostics;
using System.Text;

namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>
/// A shell (`sh`) in a NEW, private mount namespace (`unshare -m --propagation private`), like a container's
/// processes: the test tracks its namespace, then hands it one command at a time (<see cref="Exec"/>) and drains
/// the capture in between. Mounts made in it (an overlay) vanish with it. Killed by pid when disposed.
/// </summary>
public sealed class NamespacedShell : IDisposable
{
    private const string Marker = "__dk_done__";
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    public NamespacedShell()
    {
        var psi = new ProcessStartInfo("unshare")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        // Each line read is run by this same sh (builtins like echo/printf write as "sh", pid = Pid); its status follows a marker.
        string loop = $"while IFS= read -r line; do eval \"$line\"; echo \"{Marker} $?\"; done";
        foreach (var a in new[] { "-m", "--propagation", "private", "sh", "-c", loop }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginErrorReadLine();
        // unshare(2) happens before unshare execs sh (same pid): the echo below answers from inside the namespace.
        Exec("true");
        MountNamespace = ChangeCapture.MountNamespaceOf(_process.Id);
        if (MountNamespace == ChangeCapture.MountNamespaceOf(Environment.ProcessId))
            throw new InvalidOperationException("unshare -m did not create a new mount namespace");
    }

    /// <summary>The pid of the shell (sh, in the new namespace).</summary>
    public int Pid => _process.Id;

    public ulong MountNamespace { get; }

    /// <summary>Runs one shell command line in the namespace and waits for it; returns its stdout. Fails when it fails.</summary>
    public string Exec(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
        var output = new StringBuilder();
        var read = Task.Run(() =>
        {
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith(Marker + " ", StringComparison.Ordinal)) return int.Parse(line[(Marker.Length + 1)..]);
                output.AppendLine(line);
            }
            return -1;
        });
        if (!read.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException($"the namespaced shell did not finish: {command}");
        if (read.Result != 0)
        {
            Thread.Sleep(50); // let stderr arrive
            lock (_stderr) throw new InvalidOperationException($"`{command}` exited {read.Result} in the namespaced shell: {_stderr}");
        }
        return output.ToString();
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close(); // the loop ends at EOF
            if (!_process.WaitForExit(5000)) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
