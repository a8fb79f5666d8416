using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Service;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// <c>start</c>: run by containerd in the bundle directory. Works out the socket address, binds and listens
/// <em>here</em> (so the socket accepts before we exit), hands the listening socket as fd 3 to a serving copy of
/// this binary in its own session with stdio on /dev/null, writes <c>./address</c> and prints the address.
/// A live shim already on the address (grouping) is reused; a stale socket file is replaced. A new server first
/// gets the runtime options from stdin and is born in their <c>ShimCgroup</c>.
/// </summary>
internal static class StartCommand
{
    public static int Run(ShimFlags flags)
    {
        // containerd reads stdout+stderr combined: any log line would corrupt the address.
        ShimLog.Enabled = false;
        var bundle = Directory.GetCurrentDirectory();
        var spec = OciSpec.Load(bundle);
        var address = ShimAddress.For(flags.Address, flags.Namespace, ShimAddress.GroupId(flags.Id, spec));
        var socketPath = ShimAddress.SocketPath(address);

        // Two concurrent starts for one container must end with one server: serialize them on the bundle.
        using var bundleLock = FileDescriptor.Open(bundle, LibC.O_RDONLY | LibC.O_DIRECTORY);
        LibC.flock(bundleLock.Value, LibC.LOCK_EX);

        if (!Directory.Exists(ShimAddress.SocketDirectory))
            Directory.CreateDirectory(ShimAddress.SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var listener = BindOrReuse(socketPath, out bool reused);
        if (!reused)
        {
            // Like the runc shim, only a new server reads the options (a grouped start reuses a configured shim).
            try { JoinShimCgroup(flags); }
            catch
            {
                try { File.Delete(socketPath); } catch (IOException) { }
                throw;
            }
            var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find own executable");
            var args = new List<string> { self, "-namespace", flags.Namespace, "-id", flags.Id, "-address", flags.Address };
            if (flags.PublishBinary.Length > 0) { args.Add("-publish-binary"); args.Add(flags.PublishBinary); }
            if (flags.Debug) args.Add("-debug");
            Spawner.Spawn(new Reaper(), new SpawnRequest
            {
                File = self,
                Args = args,
                Fds = [null, null, null, listener!.Value],
                NewSession = true,
                WorkingDirectory = bundle,
            }, out int serverPid);
            AdjustOomScore(serverPid);
        }

        WriteAtomically(new BundlePaths(bundle).Address, address);
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(System.Text.Encoding.UTF8.GetBytes(address));
        stdout.Flush();
        return 0;
    }

    /// <summary>
    /// The options' <c>ShimCgroup</c>: this process joins it before spawning the server, so the server is in it from
    /// its first instruction (the runc shim moves its child after starting it; either way before the address is
    /// printed and containerd connects).
    /// </summary>
    private static void JoinShimCgroup(ShimFlags flags)
    {
        var options = Runc.RuncOptions.FromAny(RuntimeOptionsInput.ReadFromStdin(flags));
        if (options.ShimCgroup.Length > 0) Cgroups.ShimCgroup.Join(options.ShimCgroup, Environment.ProcessId);
    }

    private static FileDescriptor? BindOrReuse(string socketPath, out bool reused)
    {
        reused = false;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                return UnixSocket.Listen(socketPath);
            }
            catch (ErrnoException e) when (e.Errno == LibC.EADDRINUSE)
            {
                if (IsLive(socketPath))
                {
                    reused = true;
                    return null;
                }
                File.Delete(socketPath); // stale: its shim is gone
            }
        }
        throw new IOException($"cannot bind {socketPath}");
    }

    /// <summary>Whether a shim answers on <paramref name="socketPath"/>.</summary>
    public static bool IsLive(string socketPath) => UnixSocket.CanConnect(socketPath);

    /// <summary>
    /// Like the runc shim: the server's oom_score_adj is containerd's (our parent's) + 1, so under memory pressure
    /// the kernel picks a shim before containerd itself. Best effort (an unprivileged containerd cannot lower it).
    /// </summary>
    private static void AdjustOomScore(int pid)
    {
        try
        {
            int parent = int.Parse(File.ReadAllText("/proc/self/stat").Split(") ")[1].Split(' ')[1]);
            int score = int.Parse(File.ReadAllText($"/proc/{parent}/oom_score_adj").Trim());
            File.WriteAllText($"/proc/{pid}/oom_score_adj", Math.Min(score + 1, 1000).ToString());
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
        }
    }

    private static void WriteAtomically(string path, string content)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }
}
