using DiffKeeper.Shim.Events;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Protos.Events;
using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Shim.Recording;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Service;
using DiffKeeper.Ttrpc;
using Google.Protobuf;

namespace DiffKeeper.Shim.Tests.Host;

/// <summary>
/// A <see cref="ShimHost"/> on a scripted runc, a recording event sink and a recording recorder hook: for the
/// shim's own ordering logic only (which event goes out when, which exit is held), never for runc's behaviour.
/// Exits are reported through the host's exit router as the reaper would. Pids are above any pid_max, so no real
/// process (or its cgroup) is ever touched.
/// </summary>
internal sealed class ScriptedShim : IDisposable
{
    public const string Ns = "dk-test";
    public const string Id = "c1";
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private readonly TempDir _bundle = new("dks-");

    public ScriptedShim(bool ownPidNamespace)
    {
        var pid = ownPidNamespace ? """{"type":"pid"}""" : """{"type":"pid","path":"/proc/1/ns/pid"}""";
        File.WriteAllText(_bundle.Sub("config.json"),
            """{"process":{"args":["sleep","1000"],"cwd":"/"},"linux":{"namespaces":[""" + pid + "]}}");
        Host = new ShimHost(Ns, new Reaper(), settings => Runc.WithSettings(settings), Events, Recorder,
            new RecorderSettings("/nonexistent/diffkeeperd.sock", _bundle.Sub("spool"), Bound, Bound));
    }

    public ScriptedRunc Runc { get; } = new();
    public RecordingSink Events { get; } = new();
    public RecordingRecorderHook Recorder { get; } = new();
    public ShimHost Host { get; }
    public TaskService Tasks => Host.Tasks;
    public string Bundle => _bundle.Path;

    public static TtrpcCallContext Call(string method) =>
        new(TaskService.ServiceName, method, [], null, CancellationToken.None);

    public Task<CreateTaskResponse> CreateAsync() =>
        Tasks.Create(new CreateTaskRequest { Id = Id, Bundle = Bundle }, Call("Create"));

    public Task<StartResponse> StartAsync(string execId = "") =>
        Tasks.Start(new StartRequest { Id = Id, ExecId = execId }, Call("Start"));

    public Task<WaitResponse> WaitAsync(string execId = "") =>
        Tasks.Wait(new WaitRequest { Id = Id, ExecId = execId }, Call("Wait"));

    public Task<DeleteResponse> DeleteAsync(string execId = "") =>
        Tasks.Delete(new DeleteRequest { Id = Id, ExecId = execId }, Call("Delete"));

    public async Task AddExecAsync(string execId) =>
        await Tasks.Exec(new ExecProcessRequest
        {
            Id = Id, ExecId = execId,
            Spec = new Google.Protobuf.WellKnownTypes.Any { Value = ByteString.CopyFromUtf8("""{"args":["sleep","1"],"cwd":"/"}""") },
        }, Call("Exec"));

    /// <summary>The reaper saw <paramref name="pid"/> exit.</summary>
    public void Exit(int pid, int status) => Host.Exits.Dispatch(new ProcessExit(pid, status, DateTime.UtcNow));

    public void Dispose()
    {
        Host.Dispose();
        _bundle.Dispose();
    }
}

/// <summary>runc as a script: records every call, writes the pid files, and can hold Start and kill --all.</summary>
internal sealed class ScriptedRunc
{
    private readonly object _gate = new();
    private readonly List<string> _calls = new();
    private int _nextPid = 5_000_000; // above Linux's pid_max limit (2^22): never a real process

    /// <summary>When set, <c>runc start</c> waits for it (the init can exit meanwhile).</summary>
    public TaskCompletionSource? HoldStart { get; set; }

    /// <summary>When set, <c>runc kill --all</c> waits for it.</summary>
    public TaskCompletionSource? HoldKillAll { get; set; }

    /// <summary>The exec id whose <c>runc exec</c> fails.</summary>
    public string? FailExec { get; set; }

    /// <summary>Called by <c>runc delete</c> (a delete kills a created init: its exit arrives).</summary>
    public Action? OnDelete { get; set; }

    public List<string> Calls { get { lock (_gate) return [.. _calls]; } }
    public int InitPid { get; private set; }
    public Dictionary<string, int> ExecPids { get; } = new();

    public IRuncRunner WithSettings(RuncSettings settings) => new Runner(this, settings);

    private void Record(string call) { lock (_gate) _calls.Add(call); }

    private int NewPid(string pidFile)
    {
        int pid = Interlocked.Increment(ref _nextPid);
        File.WriteAllText(pidFile, pid.ToString());
        return pid;
    }

    private sealed class Runner(ScriptedRunc script, RuncSettings settings) : IRuncRunner
    {
        public RuncSettings Settings => settings;

        public Task CreateAsync(string id, string bundle, string pidFile, string? consoleSocket, bool noPivot, bool noNewKeyring, RuncStdio stdio)
        {
            script.Record("create " + id);
            script.InitPid = script.NewPid(pidFile);
            return Task.CompletedTask;
        }

        public Task ExecAsync(string id, string processSpecFile, string pidFile, string? consoleSocket, RuncStdio stdio)
        {
            var execId = Path.GetFileNameWithoutExtension(pidFile);
            script.Record("exec " + execId);
            if (execId == script.FailExec) throw new RuncException("exit status 1: exec failed", 1);
            lock (script._gate) script.ExecPids[execId] = script.NewPid(pidFile);
            return Task.CompletedTask;
        }

        public async Task StartAsync(string id)
        {
            script.Record("start " + id);
            if (script.HoldStart is { } hold) await hold.Task;
        }

        public async Task KillAsync(string id, int signal, bool all)
        {
            script.Record(all ? $"kill --all {id} {signal}" : $"kill {id} {signal}");
            if (all && script.HoldKillAll is { } hold) await hold.Task;
        }

        public Task DeleteAsync(string id, bool force)
        {
            script.Record("delete " + id);
            script.OnDelete?.Invoke();
            return Task.CompletedTask;
        }

        public Task PauseAsync(string id) { script.Record("pause " + id); return Task.CompletedTask; }
        public Task ResumeAsync(string id) { script.Record("resume " + id); return Task.CompletedTask; }
        public Task UpdateAsync(string id, byte[] resourcesJson) { script.Record("update " + id); return Task.CompletedTask; }
        public Task<List<int>> PsAsync(string id) => Task.FromResult(new List<int> { script.InitPid });
        public string? LastLoggedError() => null;
    }
}

/// <summary>The events the shim published, in order, as short strings: <c>exit c1</c>, <c>exit e1</c>, <c>start</c>.</summary>
internal sealed class RecordingSink : IEventSink
{
    private readonly object _gate = new();
    private readonly List<string> _events = new();

    public List<string> Events { get { lock (_gate) return [.. _events]; } }

    public void Publish(string topic, IMessage evt)
    {
        var name = evt switch
        {
            TaskCreate => "create",
            TaskStart => "start",
            TaskExecAdded e => "exec-added " + e.ExecId,
            TaskExecStarted e => "exec-started " + e.ExecId,
            TaskExit e => "exit " + e.Id,
            TaskDelete => "delete",
            TaskPaused => "paused",
            TaskResumed => "resumed",
            TaskOOM => "oom",
            _ => topic,
        };
        lock (_gate) _events.Add(name);
    }

    /// <summary>Waits (bounded) until <paramref name="name"/> was published; false if it never was.</summary>
    public async Task<bool> WaitForAsync(string name, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (DateTime.UtcNow < deadline)
        {
            if (Events.Contains(name)) return true;
            await Task.Delay(5);
        }
        return Events.Contains(name);
    }
}

/// <summary>The recorder hook's calls, in order (the lifecycle feed and the three container callbacks).</summary>
internal sealed class RecordingRecorderHook : IRecorderHook
{
    private readonly object _gate = new();
    private readonly List<string> _calls = new();

    public List<string> Calls { get { lock (_gate) return [.. _calls]; } }

    private Task Add(string call) { lock (_gate) _calls.Add(call); return Task.CompletedTask; }

    public Task OnCreatedAsync(ContainerRecordInfo container, CancellationToken ct) => Add("created");
    public Task OnExitedBeforeUnmountAsync(ContainerRecordInfo container, int exitStatus, CancellationToken ct) => Add($"exited {exitStatus}");
    public Task OnDeletedAsync(ContainerRecordInfo container, CancellationToken ct) => Add("deleted");
    public void OnLifecycle(LifecycleEvent e) => Add(e.ExecId.Length > 0 ? $"{e.Kind} {e.ExecId}" : e.Kind);
}
