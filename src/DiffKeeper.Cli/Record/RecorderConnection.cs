using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Store.Native;
using DiffKeeper.Ttrpc;
using Google.Protobuf;

namespace DiffKeeper.Cli.Record;

/// <summary>
/// The diffkeeperd that records a command: the node's daemon when its socket answers (and it writes the store asked
/// for), else a private one for the store, started for the duration. Private daemons are shared: RocksDB allows one
/// writer per store, so parallel `record` runs on one store (8 test shards on one CI runner) must share one daemon.
/// Its directory (/run/diffkeeper-record/HASH-OF-STORE: socket, pid, log, locks) coordinates them: every run holds
/// a shared lock on users.lock while it records; starting and stopping happen under start.lock; the run that ends
/// and finds no other user (its lock upgrades to exclusive) stops the daemon by its pid. A run killed without a word
/// (SIGKILL, a CI job's timeout) releases its locks with its death and closes its connection: the daemon, started
/// with --private DIR, then ends that run's recording itself and, finding no user left by the same locks, stops
/// (diffkeeperd's Lifecycle/PrivateDaemon.cs).
/// </summary>
internal sealed class RecorderConnection : IAsyncDisposable
{
    public const string Service = "diffkeeper.recorder.v1.Recorder";
    private const string DaemonName = "diffkeeperd";

    private readonly TtrpcClient _client;
    private readonly string? _privateDir;
    private readonly LockFile? _users;
    public string Socket { get; }
    public bool Private => _privateDir != null;

    private RecorderConnection(TtrpcClient client, string socket, string? privateDir, LockFile? users)
    {
        _client = client; Socket = socket; _privateDir = privateDir; _users = users;
    }

    public Task<TResp> CallAsync<TReq, TResp>(string method, TReq req, MessageParser<TResp> parser, TimeSpan timeout)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp> =>
        _client.CallAsync(Service, method, req, parser, null, timeout);

    /// <summary>Connects to the node's daemon at <paramref name="socket"/>, or starts (or joins) a private one for
    /// <paramref name="store"/>. <paramref name="storeExplicit"/>: the node's daemon is used only if it writes that store.</summary>
    public static async Task<RecorderConnection> OpenAsync(string socket, string store, bool storeExplicit)
    {
        if (File.Exists(socket))
        {
            var c = await TryConnectAsync(socket);
            if (c != null)
            {
                var status = await TryStatusAsync(c);
                if (status != null && (!storeExplicit || SameDir(status.Store, store))) return new RecorderConnection(c, socket, null, null);
                await c.DisposeAsync();
            }
        }
        return await OpenPrivateAsync(store);
    }

    private static bool SameDir(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);

    private static async Task<TtrpcClient?> TryConnectAsync(string socket)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            return await TtrpcClient.ConnectAsync(socket, cts.Token);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException or IOException) { return null; }
    }

    private static async Task<StatusResponse?> TryStatusAsync(TtrpcClient c)
    {
        try { return await c.CallAsync(Service, "Status", new StatusRequest(), StatusResponse.Parser, null, TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is TtrpcException or IOException or OperationCanceledException) { return null; }
    }

    public static string PrivateDirFor(string store)
    {
        var full = Path.GetFullPath(store).TrimEnd('/');
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full)))[..16];
        var baseDir = Directory.Exists("/run") && IsWritable("/run") ? "/run/diffkeeper-record" : Path.Combine(Path.GetTempPath(), "diffkeeper-record");
        return Path.Combine(baseDir, hash);
    }

    private static bool IsWritable(string dir)
    {
        try
        {
            var probe = Path.Combine(dir, ".dk-probe-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static async Task<RecorderConnection> OpenPrivateAsync(string store)
    {
        var dir = PrivateDirFor(store);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var socket = Path.Combine(dir, "daemon.sock");
        var users = new LockFile(Path.Combine(dir, "users.lock"));
        try
        {
            // Held exclusively only while the daemon stops: by the last run that stops it (45 s at most, then SIGKILL),
            // or by the daemon itself when it retires (it found no user) until it has exited. Not waited for without end.
            if (!users.TryLockFor(Libc.LOCK_SH, TimeSpan.FromSeconds(60)))
                throw new IOException($"{users.Path} stayed locked for 60 s (a private diffkeeperd that does not finish stopping?)");
            using var start = new LockFile(Path.Combine(dir, "start.lock"));
            start.Lock(Libc.LOCK_EX);
            try
            {
                if (File.Exists(socket) && await TryConnectAsync(socket) is { } c)
                {
                    if (await TryStatusAsync(c) != null) return new RecorderConnection(c, socket, dir, users);
                    await c.DisposeAsync();
                }
                var exe = FindDaemon() ?? throw new IOException($"no diffkeeperd is running ({socket} absent) and {DaemonName} was found neither beside {AppContext.BaseDirectory} nor on PATH");
                var log = Path.Combine(dir, "daemon.log");
                File.WriteAllText(log, "");
                int pid = Spawn.Start([exe, "--store", store, "--socket", socket, "--private", dir], log);
                File.WriteAllText(Path.Combine(dir, "daemon.pid"), pid.ToString(CultureInfo.InvariantCulture));
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (DateTime.UtcNow < deadline)
                {
                    if (!IsAlive(pid))
                        throw new IOException($"{exe} exited at start: {Tail(log)}");
                    if (File.Exists(socket) && await TryConnectAsync(socket) is { } c2)
                    {
                        if (await TryStatusAsync(c2) != null) return new RecorderConnection(c2, socket, dir, users);
                        await c2.DisposeAsync();
                    }
                    await Task.Delay(50);
                }
                Stop(pid);
                throw new IOException($"{exe} did not answer on {socket} within 60 s: {Tail(log)}");
            }
            finally { start.Lock(Libc.LOCK_UN); }
        }
        catch
        {
            users.Dispose();
            throw;
        }
    }

    private static string Tail(string log)
    {
        try
        {
            var lines = File.ReadAllLines(log);
            return string.Join(" | ", lines.TakeLast(5));
        }
        catch (IOException) { return "(no log)"; }
    }

    /// <summary>diffkeeperd beside this binary (the install's bin directory), beside the name it was started by
    /// (artifacts/bin/diffkeeper is a symlink into artifacts/cli), else on PATH.</summary>
    public static string? FindDaemon()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, DaemonName);
        if (File.Exists(beside)) return beside;
        var argv0 = Environment.GetCommandLineArgs().FirstOrDefault() ?? "";
        if (argv0.Contains('/') && Path.GetDirectoryName(Path.GetFullPath(argv0)) is { } invokedDir && File.Exists(Path.Combine(invokedDir, DaemonName)))
            return Path.Combine(invokedDir, DaemonName);
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(d, DaemonName);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static bool IsAlive(int pid)
    {
        if (Spawn.TryReap(pid) && !File.Exists($"/proc/{pid}/stat")) return false;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
    }

    /// <summary>SIGTERM to a daemon we (or another run) started, by pid, and wait for it (it flushes the store).</summary>
    private static void Stop(int pid)
    {
        try
        {
            var comm = File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');
            if (comm != DaemonName) return; // the pid was reused: not ours to stop
        }
        catch (IOException) { return; }
        Spawn.kill(pid, 15);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(45);
        while (IsAlive(pid) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        if (IsAlive(pid)) { Spawn.kill(pid, 9); while (IsAlive(pid)) Thread.Sleep(20); }
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        if (_privateDir == null || _users == null) return;
        using (var start = new LockFile(Path.Combine(_privateDir, "start.lock")))
        {
            start.Lock(Libc.LOCK_EX);
            // The last user (no one else holds users.lock shared) stops the daemon.
            if (_users.TryLock(Libc.LOCK_EX))
            {
                var pidFile = Path.Combine(_privateDir, "daemon.pid");
                if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    Stop(pid);
                    File.Delete(pidFile);
                }
            }
            start.Lock(Libc.LOCK_UN);
        }
        _users.Dispose();
    }
}
