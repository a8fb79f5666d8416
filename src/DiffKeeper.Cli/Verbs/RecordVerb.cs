using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Record;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Ttrpc;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Cli;

/// <summary>
/// `diffkeeper record [--dir DIR]... [--name NAME] [--keep always|failure] -- CMD ARGS...`: runs CMD in a cgroup of
/// its own that diffkeeperd tracks, so what CMD and every process it starts change under the watched directories is
/// recorded like a container (docs/record.md). stdin/stdout/stderr are CMD's, untouched; SIGINT, SIGTERM, SIGHUP and
/// SIGQUIT are passed on to it; `record` exits with CMD's status (128+N when killed by signal N). Our own messages go
/// to stderr, prefixed "diffkeeper record:". When the recording cannot be set up (not root, no cgroup v2, no daemon
/// binary), CMD still runs, unrecorded, after a warning: a CI step must not fail because of the recorder.
/// </summary>
public static class RecordVerb
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(5), EndTimeout = TimeSpan.FromMinutes(5);

    public static int Run(ParsedArgs a, CliContext ctx) => RunAsync(a, ctx).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(ParsedArgs a, CliContext ctx)
    {
        var cmd = a.Positionals;
        string keep = a.Value("keep") ?? "";
        if (keep is not ("" or "always" or "failure")) throw new UsageException($"--keep must be always or failure, not '{keep}'");
        var dirs = new List<string>();
        foreach (var d in a.ValuesOf("dir").DefaultIfEmpty(Environment.CurrentDirectory))
        {
            var full = Path.GetFullPath(d);
            if (!Directory.Exists(full)) throw new UsageException($"--dir {d}: no such directory");
            dirs.Add(full);
        }
        string name = a.Value("name") ?? Path.GetFileName(cmd[0]);
        string? summaryFile = a.Value("summary");
        bool quiet = a.Quiet;
        void Say(string s) { if (!quiet) Console.Error.WriteLine("diffkeeper record: " + s); }

        // Signals are passed on to CMD. One that comes before CMD runs (while the daemon starts, the baseline is read)
        // is held and passed on as soon as CMD runs: `record` must not die in the middle of the set-up, leaving its
        // cgroup and its private daemon behind (it did before session 9, docs/record.md).
        var forwarding = new List<PosixSignalRegistration>();
        int childPid = 0, pendingSignal = 0;
        void PassOn()
        {
            int p = Volatile.Read(ref childPid);
            if (p > 0 && Interlocked.Exchange(ref pendingSignal, 0) is > 0 and var n) Spawn.kill(p, n);
        }
        foreach (var (sig, num) in new[] { (PosixSignal.SIGINT, 2), (PosixSignal.SIGTERM, 15), (PosixSignal.SIGHUP, 1), (PosixSignal.SIGQUIT, 3) })
        {
            forwarding.Add(PosixSignalRegistration.Create(sig, c =>
            {
                c.Cancel = true; // we stay to finish the recording; the command decides what the signal means
                Volatile.Write(ref pendingSignal, num);
                PassOn();
            }));
        }

        // 1. The daemon and the command's cgroup. Any failure here: CMD runs unrecorded.
        RecorderConnection? conn = null;
        CommandCgroup? cgroup = null;
        RecordStartResponse? started = null;
        string session = $"diffkeeper-record-{Environment.ProcessId}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
        try
        {
            var socket = a.Value("socket") ?? (Environment.GetEnvironmentVariable("DIFFKEEPER_SOCKET") is { Length: > 0 } s ? s : "/run/diffkeeper/diffkeeperd.sock");
            bool storeExplicit = a.Value("store") != null || Environment.GetEnvironmentVariable("DIFFKEEPER_STORE") is { Length: > 0 };
            conn = await RecorderConnection.OpenAsync(socket, ctx.StoreDir, storeExplicit);
            cgroup = CommandCgroup.Create(session);
            var process = new OciProcess { Cwd = Environment.CurrentDirectory, Uid = Spawn.geteuid(), Gid = Spawn.getegid() };
            process.Args.AddRange(cmd);
            process.EnvNames.AddRange(Environment.GetEnvironmentVariables().Keys.Cast<string>().Order(StringComparer.Ordinal));
            var req = new RecordStartRequest
            {
                Name = name, CgroupPath = cgroup.Path, CgroupId = cgroup.Id, Process = process, Keep = keep,
                StartedAt = Timestamp.FromDateTime(DateTime.UtcNow), RecorderPid = Environment.ProcessId,
            };
            req.Dirs.AddRange(dirs);
            started = await conn.CallAsync("RecordStart", req, RecordStartResponse.Parser, StartTimeout);
            if (started.Reason.Length > 0) Say("warning: " + started.Reason);
        }
        catch (Exception e) when (e is IOException or TtrpcException or UnauthorizedAccessException or System.Net.Sockets.SocketException or TimeoutException)
        {
            Say($"not recording: {OneLine(e.Message)}; running the command anyway");
            cgroup?.Remove();
            cgroup = null;
            if (conn != null) { await conn.DisposeAsync(); conn = null; }
        }

        // 2. The command, in the cgroup: we step in, spawn (the child inherits the cgroup at fork), and step out.
        long exitedAt;
        int pid = 0, status, signal = 0;
        Timestamp? startTime = null;
        try
        {
            try
            {
                startTime = Timestamp.FromDateTime(DateTime.UtcNow);
                bool entered = false;
                try { cgroup?.Enter(Environment.ProcessId); entered = cgroup != null; }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Say($"warning: cannot enter the cgroup {cgroup?.Path} ({OneLine(e.Message)}): the command's changes are not " +
                        "recorded live, only the states at start and at exit");
                }
                try { pid = Spawn.Start(cmd); }
                finally { if (entered) cgroup!.Leave(Environment.ProcessId); }
                Volatile.Write(ref childPid, pid);
                PassOn(); // a signal that came before
            }
            catch (SpawnException e)
            {
                Console.Error.WriteLine("diffkeeper record: " + e.Message);
            }
            if (pid == 0) status = 127; // as a shell: the command could not be run
            else
            {
                if (conn != null && started != null)
                {
                    try
                    {
                        await conn.CallAsync("Lifecycle", new LifecycleRequest
                        {
                            Namespace = "record", Id = started.Session, Kind = "start", Pid = pid, Time = startTime,
                        }, LifecycleResponse.Parser, TimeSpan.FromSeconds(10));
                    }
                    catch (Exception e) when (e is TtrpcException or IOException) { Say("warning: the start event was not recorded: " + OneLine(e.Message)); }
                }
                (status, signal) = await Task.Factory.StartNew(() => Spawn.Wait(pid), TaskCreationOptions.LongRunning);
            }
            exitedAt = NowNs();
        }
        finally
        {
            Volatile.Write(ref childPid, 0);
            foreach (var r in forwarding) r.Dispose();
        }

        // 3. The end of the recording: survivors said, the state at exit, the exit status.
        if (conn != null && started != null && cgroup != null)
        {
            try
            {
                var survivors = cgroup.Members().Where(m => m.Pid != Environment.ProcessId).ToList();
                var end = new RecordEndRequest
                {
                    Session = started.Session, ExitStatus = status, Signal = signal,
                    ExitedAt = Timestamp.FromDateTime(DateTime.UnixEpoch.AddTicks(exitedAt / 100)),
                };
                end.Survivors.AddRange(survivors.Select(m => $"{m.Pid} {m.Comm}"));
                var r = await conn.CallAsync("RecordEnd", end, RecordEndResponse.Parser, EndTimeout);
                var id = RecordingInfo.FormatId(r.RecordingId);
                if (survivors.Count > 0)
                    Say($"{survivors.Count} process(es) started by the command still run ({string.Join(", ", survivors.Select(m => $"{m.Pid} {m.Comm}"))}): the recording ended with the command");
                if (r.Kept) Say($"recording {id} ({name}): {r.Versions} versions, {r.Events} events, exit status {status}; store {ctx.StoreDir}");
                else Say($"exit status 0 and --keep failure: recording {id} dropped");
                if (a.Json || summaryFile != null)
                {
                    var json = Summary(r, id, name, status, signal, survivors.Count, started.Root, dirs, ctx.StoreDir);
                    if (a.Json) Console.Error.WriteLine(json);
                    if (summaryFile != null) File.WriteAllText(summaryFile, json + "\n");
                }
            }
            catch (Exception e) when (e is IOException or TtrpcException or UnauthorizedAccessException)
            {
                Say("the recording could not be finished: " + OneLine(e.Message));
            }
        }
        // Survivors moved out, the cgroup removed; if that fails, a warning: CMD's status stands, the daemon still stops.
        if (cgroup?.Remove() is { } why) Say($"warning: the command's cgroup {cgroup.Path} could not be removed: {OneLine(why)}");
        if (conn != null) await conn.DisposeAsync();
        return status;
    }

    private static string Summary(RecordEndResponse r, string id, string name, int status, int signal, int survivors, string root, List<string> dirs, string store)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("recording", id);
            w.WriteString("name", name);
            w.WriteBoolean("kept", r.Kept);
            w.WriteNumber("exit_status", status);
            if (signal > 0) w.WriteNumber("signal", signal); else w.WriteNull("signal");
            w.WriteNumber("versions", r.Versions);
            w.WriteNumber("events", r.Events);
            w.WriteNumber("survivors", survivors);
            w.WriteString("root", root);
            w.WriteStartArray("dirs");
            foreach (var d in dirs) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteString("store", store);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static long NowNs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    private static string OneLine(string s) => s.Replace('\n', ' ').Replace('\r', ' ');
}
