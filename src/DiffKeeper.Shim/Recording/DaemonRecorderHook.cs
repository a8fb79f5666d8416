using System.Collections.Concurrent;
using System.Threading.Channels;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Service;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// The real recorder hook (docs/recorder.md): Track at Create, lifecycle events from a small background queue, and
/// at the init's exit the freeze of the upper tree into a spool entry, then Exited. The daemon is optional: with no
/// daemon (or a slow one) every call ends within <see cref="RecorderSettings.Timeout"/> — at once when there is no
/// socket — and the shim still freezes into the spool, where the daemon finds the entry when it starts.
/// What the <c>delete</c> subcommand needs (the crash path gets no Create) is kept in the bundle state.
/// </summary>
internal sealed class DaemonRecorderHook : IRecorderHook, IAsyncDisposable
{
    /// <summary>Lifecycle events waiting for the daemon; beyond this they are dropped (and counted), never waited for.</summary>
    public const int QueueCapacity = 128;
    /// <summary>Events remembered per container for the manifest (those the daemon may not have seen).</summary>
    private const int MaxEventsKept = 256;
    public const string RecordAnnotation = "io.diffkeeper/record";

    private readonly RecorderSettings _settings;
    private readonly string _containerdAddress;
    private readonly string _frozenBy;
    private readonly RecorderClient _client;
    private readonly ConcurrentDictionary<string, Tracked> _tracked = new();
    private readonly Channel<Pending> _queue =
        Channel.CreateBounded<Pending>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly object _loopGate = new();
    private Task? _loop;
    private long _dropped;
    private int _pending;

    /// <param name="frozenBy">"shim" for the serving shim, "delete" for the subcommand (written into the manifest).</param>
    public DaemonRecorderHook(RecorderSettings settings, string containerdAddress, string frozenBy = "shim")
    {
        _settings = settings;
        _containerdAddress = containerdAddress;
        _frozenBy = frozenBy;
        _client = new RecorderClient(settings.Socket);
    }

    public RecorderSettings Settings => _settings;
    /// <summary>Lifecycle events dropped because the queue was full (a slow or hung daemon).</summary>
    public long DroppedEvents => Interlocked.Read(ref _dropped);

    private sealed class Tracked(ContainerInfo? info, DateTime? createdAt)
    {
        public ContainerInfo? Info { get; } = info;
        public DateTime? CreatedAt { get; } = createdAt;
        public ulong RecordingId { get; set; }
        public string? SpoolDir { get; set; }
        public bool Record { get; set; } = true;
        public List<EventRecord> Events { get; } = new();
    }

    private sealed class EventRecord(LifecycleEvent e)
    {
        public LifecycleEvent Event { get; } = e;
        public volatile bool Delivered;
    }

    private readonly record struct Pending(LifecycleRequest Request, EventRecord Record);

    private static string Key(string ns, string id) => ns + "/" + id;

    // ---- Create ------------------------------------------------------------------------------------------------

    public async Task OnCreatedAsync(ContainerRecordInfo c, CancellationToken ct)
    {
        var createdAt = DateTime.UtcNow;
        var info = ContainerInfoBuilder.Build(c, _containerdAddress);
        var tracked = new Tracked(info, createdAt)
        {
            Record = !(c.Spec?.Annotations.TryGetValue(RecordAnnotation, out var record) == true && record == "false"),
        };
        _tracked[Key(c.Namespace, c.Id)] = tracked;
        // Before asking the daemon: if the shim dies while Track hangs, the delete subcommand still knows the container.
        SaveState(c, tracked);
        try
        {
            var reply = await _client.CallAsync("Track", new TrackRequest { Container = info, CreatedAt = Timestamp.FromDateTime(createdAt) },
                TrackResponse.Parser, _settings.Timeout, ct).ConfigureAwait(false);
            if (reply == null) return; // no daemon: the exit state goes to the spool
            tracked.RecordingId = reply.RecordingId;
            if (reply.SpoolDir.Length > 0) tracked.SpoolDir = reply.SpoolDir;
            if (!reply.Recording)
            {
                tracked.Record = false;
                ShimLog.Info($"recorder: not recording {c.Id}: {reply.Reason}");
            }
            SaveState(c, tracked);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            ShimLog.Warn($"recorder: Track {c.Id}: {e.Message}; the exit state goes to the spool");
        }
    }

    private static void SaveState(ContainerRecordInfo c, Tracked t)
    {
        try
        {
            BundleState.Update(c.Bundle, c.Namespace, s => s with
            {
                UpperDir = s.UpperDir ?? c.UpperDir,
                RootfsType = s.RootfsType ?? c.Layout?.Type,
                CreatedAt = t.CreatedAt,
                RecordingId = t.RecordingId,
                SpoolDir = t.SpoolDir,
                Record = t.Record,
                ContainerInfo = t.Info == null ? s.ContainerInfo : Convert.ToBase64String(Google.Protobuf.MessageExtensions.ToByteArray(t.Info)),
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"recorder: saving the bundle state of {c.Id}: {e.Message}");
        }
    }

    // ---- lifecycle events ----------------------------------------------------------------------------------------

    public void OnLifecycle(LifecycleEvent e)
    {
        var record = new EventRecord(e);
        if (_tracked.TryGetValue(Key(e.Namespace, e.ContainerId), out var t))
            lock (t.Events)
                if (t.Events.Count < MaxEventsKept) t.Events.Add(record);
        var request = new LifecycleRequest
        {
            Namespace = e.Namespace, Id = e.ContainerId, Kind = e.Kind, Time = Timestamp.FromDateTime(e.Time.ToUniversalTime()),
            Pid = e.Pid, ExecId = e.ExecId, ExitStatus = e.ExitStatus,
        };
        EnsureLoop();
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(new Pending(request, record)))
        {
            Interlocked.Decrement(ref _pending);
            long dropped = Interlocked.Increment(ref _dropped);
            // One line per power of two: a hung daemon must not flood containerd's log either.
            if ((dropped & (dropped - 1)) == 0) ShimLog.Warn($"recorder: lifecycle queue full, {dropped} event(s) dropped so far");
        }
    }

    private void EnsureLoop()
    {
        if (_loop != null) return;
        lock (_loopGate) _loop ??= Task.Run(SendLoopAsync);
    }

    private async Task SendLoopAsync()
    {
        await foreach (var p in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                // No daemon (null): the event stays undelivered and goes into the manifest.
                if (await _client.CallAsync("Lifecycle", p.Request, LifecycleResponse.Parser, _settings.Timeout).ConfigureAwait(false) != null)
                    p.Record.Delivered = true;
            }
            catch (Exception e)
            {
                ShimLog.Trace($"recorder: Lifecycle {p.Request.Kind} {p.Request.Id}: {e.Message}");
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    public async Task FlushAsync(TimeSpan bound)
    {
        long deadline = Environment.TickCount64 + (long)bound.TotalMilliseconds;
        while (Volatile.Read(ref _pending) > 0 && Environment.TickCount64 < deadline)
            await Task.Delay(10).ConfigureAwait(false);
    }

    // ---- the exit: freeze, manifest, Exited ----------------------------------------------------------------------

    public async Task OnExitedBeforeUnmountAsync(ContainerRecordInfo c, int exitStatus, CancellationToken ct)
    {
        var key = Key(c.Namespace, c.Id);
        BundleState? state = null;
        if (!_tracked.TryGetValue(key, out var tracked))
        {
            // The crash path (delete subcommand): all we know is in the bundle state.
            state = BundleState.Load(c.Bundle, c.Namespace);
            if (state.FrozenEntry != null)
            {
                ShimLog.Info($"recorder: exit of {c.Id} already frozen into {state.FrozenEntry}");
                return;
            }
            tracked = FromState(state);
        }
        if (!tracked.Record) return;

        var exitedAt = c.ExitedAt ?? DateTime.UtcNow;
        if (c.UpperDir == null && tracked.Info is { UpperDir.Length: > 0 } saved) c = c with { UpperDir = saved.UpperDir };
        var rootfsType = c.Layout?.Type ?? state?.RootfsType ?? tracked.Info?.RootfsType ?? (c.UpperDir != null ? "overlay" : "");
        var spool = tracked.SpoolDir ?? _settings.DefaultSpool;
        var entry = Freeze(c, tracked, spool, rootfsType, exitedAt, exitStatus);
        if (entry == null) return;
        try
        {
            BundleState.Update(c.Bundle, c.Namespace, s => s with { FrozenEntry = entry });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"recorder: marking the exit of {c.Id} frozen: {e.Message}");
        }

        try
        {
            await _client.CallAsync("Exited", new ExitedRequest
            {
                Namespace = c.Namespace, Id = c.Id, SpoolEntry = entry, ExitStatus = exitStatus,
                ExitedAt = Timestamp.FromDateTime(exitedAt.ToUniversalTime()),
            }, ExitedResponse.Parser, _settings.Timeout, ct).ConfigureAwait(false); // null: no daemon; it ingests the spool when it starts
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            ShimLog.Warn($"recorder: Exited {c.Id}: {e.Message}; the entry stays in the spool");
        }
    }

    private static Tracked FromState(BundleState state)
    {
        ContainerInfo? info = null;
        if (state.ContainerInfo != null)
        {
            try { info = ContainerInfo.Parser.ParseFrom(Convert.FromBase64String(state.ContainerInfo)); }
            catch (Exception e) when (e is FormatException or Google.Protobuf.InvalidProtocolBufferException) { }
        }
        return new Tracked(info, state.CreatedAt) { RecordingId = state.RecordingId, SpoolDir = state.SpoolDir, Record = state.Record };
    }

    /// <summary>The spool entry's path, or null when not even the entry could be made (then nothing was frozen).</summary>
    private string? Freeze(ContainerRecordInfo c, Tracked tracked, string spool, string rootfsType, DateTime exitedAt, int exitStatus)
    {
        string entry;
        try
        {
            entry = SpoolEntry.Create(spool, c.Namespace, c.Id, exitedAt);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            ShimLog.Error($"recorder: cannot create a spool entry for {c.Id} under {spool}: {e.Message}; its exit state is not recorded");
            return null;
        }

        FreezeResult? result = null;
        var errors = new List<string>();
        string method = "none";
        if (rootfsType == "overlay" && c.UpperDir != null)
        {
            if (Directory.Exists(c.UpperDir))
            {
                result = UpperFreezer.Freeze(c.UpperDir, Path.Combine(entry, "upper"), _settings.FreezeBudget);
                method = result.Method;
            }
            else
            {
                errors.Add($"upper dir {c.UpperDir} is gone");
            }
        }

        List<LifecycleEvent> undelivered;
        lock (tracked.Events) undelivered = tracked.Events.Where(r => !r.Delivered).Select(r => r.Event).ToList();
        var manifest = new SpoolManifest
        {
            Namespace = c.Namespace, Id = c.Id, RecordingId = tracked.RecordingId, CreatedAt = tracked.CreatedAt, ExitedAt = exitedAt,
            ExitStatus = exitStatus, UpperDir = c.UpperDir, RootfsType = rootfsType, Freeze = method, FreezeErrors = errors,
            Result = result, Container = tracked.Info, Events = undelivered, FrozenBy = _frozenBy, EventsDropped = DroppedEvents,
        };
        try
        {
            // The fsync (5–30 ms on ext4 here) is kept off Delete's path in the serving shim: it runs right after, in
            // the background. The delete subcommand exits at once, so it syncs before the rename.
            manifest.WriteTo(entry, syncBeforeRename: _frozenBy == "delete");
            if (_frozenBy != "delete") _ = Task.Run(() => SpoolManifest.Sync(entry));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Error($"recorder: writing the manifest of {entry}: {e.Message}");
            return null;
        }
        if (result != null)
        {
            var line = $"recorder: froze {c.Id} into {entry} ({method}: {result.Linked} linked, {result.Reflinked} reflinked, " +
                $"{result.Copied} copied, {result.Directories} dirs) in {result.Elapsed.TotalMilliseconds:F1} ms";
            if (result.ErrorCount > 0 || !result.Complete) ShimLog.Warn($"{line}; {result.ErrorCount} error(s), first: {result.Errors.FirstOrDefault()}");
            else ShimLog.Info(line);
        }
        return entry;
    }

    public Task OnDeletedAsync(ContainerRecordInfo c, CancellationToken ct)
    {
        _tracked.TryRemove(Key(c.Namespace, c.Id), out _);
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _client.DisposeAsync().ConfigureAwait(false);
    }
}
