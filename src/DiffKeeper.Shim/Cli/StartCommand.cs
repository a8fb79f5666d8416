using System.Net.Sockets;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Service;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// <c>start</c>: run by containerd in the bundle directory. Works out the socket address, binds and listens
/// <em>here</em> (so the socket accepts before we exit), hands the listening socket as fd 3 to a serving copy of
/// this binary in its own session with stdio on /dev/null, writes <c>./address</c> and prints the address.
/// A live shim already on the address (grouping) is reused; a stale socket file is replaced.
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

        Directory.CreateDirectory(ShimAddress.SocketDirectory);
        using var listener = BindOrReuse(socketPath, out bool reused);
        if (!reused)
        {
            var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find own executable");
            var args = new List<string> { self, "-namespace", flags.Namespace, "-id", flags.Id, "-address", flags.Address };
            if (flags.PublishBinary.Length > 0) { args.Add("-publish-binary"); args.Add(flags.PublishBinary); }
            if (flags.Debug) args.Add("-debug");
            Spawner.Spawn(new Reaper(), new SpawnRequest
            {
                File = self,
                Args = args,
                Fds = [null, null, null, (int)listener!.Handle],
                NewSession = true,
                WorkingDirectory = bundle,
            }, out _);
        }

        WriteAtomically(Path.Combine(bundle, "address"), address);
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(System.Text.Encoding.UTF8.GetBytes(address));
        stdout.Flush();
        return 0;
    }

    private static Socket? BindOrReuse(string socketPath, out bool reused)
    {
        reused = false;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Bind(new UnixDomainSocketEndPoint(socketPath));
                socket.Listen(128);
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                socket.Dispose();
                if (IsLive(socketPath))
                {
                    reused = true;
                    return null;
                }
                File.Delete(socketPath); // stale: its shim is gone
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw new IOException($"cannot bind {socketPath}");
    }

    /// <summary>Whether a shim answers on <paramref name="socketPath"/>.</summary>
    public static bool IsLive(string socketPath)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void WriteAtomically(string path, string content)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
    }
}
