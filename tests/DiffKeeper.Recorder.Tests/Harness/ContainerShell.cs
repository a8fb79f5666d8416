using System.Diagnostics;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>
/// A stand-in for a container's processes: `unshare -m --propagation private sh` (its own mount namespace, like a
/// container's init), fed one command line per step on stdin. Each step answers on stdout with the pid of the
/// program it started in the background ("pid N", when it did) and "done STATUS". Killed by pid on dispose.
/// </summary>
public sealed class ContainerShell : IDisposable
{
    private readonly Process _process;
    public int Pid => _process.Id;
    public ulong MountNamespace { get; }
    public string Cwd { get; }

    public ContainerShell(string cwd)
    {
        Cwd = cwd;
        var script = """
            cd "$1" || exit 99
            echo ready
            while read -r line; do
              eval "$line" </dev/null
              echo "done $?"
            done
            exit 3
            """;
        var psi = new ProcessStartInfo("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", cwd])
        { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        _process = Process.Start(psi)!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        var first = ReadLine(TimeSpan.FromSeconds(10));
        if (first != "ready") throw new Xunit.Sdk.XunitException($"the container shell did not start: {first}");
        // After "ready", unshare has run: the namespace is the container's, not ours.
        MountNamespace = MountNamespaceOf(Pid);
        if (MountNamespace == MountNamespaceOf(Environment.ProcessId)) throw new Xunit.Sdk.XunitException("unshare -m did not create a mount namespace");
    }

    public static ulong MountNamespaceOf(int pid)
    {
        var target = new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget ?? throw new IOException("no ns link");
        // "mnt:[4026531841]"
        return ulong.Parse(target[(target.IndexOf('[') + 1)..target.IndexOf(']')]);
    }

    private string? ReadLine(TimeSpan timeout)
    {
        var t = _process.StandardOutput.ReadLineAsync();
        if (!t.Wait(timeout)) throw new Xunit.Sdk.XunitException("the container shell did not answer in time");
        return t.Result;
    }

    /// <summary>One step. Returns the pid of the background program when the line started one with `&amp; echo "pid $!"; wait $!`.</summary>
    public (int? Pid, int Status) Step(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
        int? pid = null;
        while (true)
        {
            var l = ReadLine(TimeSpan.FromSeconds(20)) ?? throw new Xunit.Sdk.XunitException("the container shell ended");
            if (l.StartsWith("pid ", StringComparison.Ordinal)) pid = int.Parse(l[4..]);
            else if (l.StartsWith("done ", StringComparison.Ordinal)) return (pid, int.Parse(l[5..]));
        }
    }

    /// <summary>A program run in the background so its pid (and comm) are known: `prog args &amp; echo "pid $!"; wait $!`.</summary>
    public (int Pid, int Status) Run(string command)
    {
        var (pid, status) = Step($"{command} & echo \"pid $!\"; wait $!");
        return (pid ?? throw new Xunit.Sdk.XunitException("no pid"), status);
    }

    /// <summary>Ends the loop: the shell exits 3 (the "container's" exit status).</summary>
    public int Exit()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(10_000)) throw new Xunit.Sdk.XunitException("the container shell did not exit");
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(5000); } } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
