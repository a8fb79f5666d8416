using System.Text;
using DiffKeeper.Shim.Diagnostics;
using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Cgroups;

/// <summary>
/// Reports OOM kills of watched containers, on one thread for all of them (created on first use):
/// cgroup v1 — an eventfd registered on <c>memory.oom_control</c> through <c>cgroup.event_control</c>;
/// cgroup v2 — inotify on <c>memory.events</c>. Both report only when the cgroup's <c>oom_kill</c> counter
/// went up, so <see cref="CheckNow"/> (called before an init exit is published) and the watcher thread never
/// report one kill twice — and the OOM event always precedes the exit it caused.
/// </summary>
internal sealed class OomWatcher : IDisposable
{
    private sealed class Watch
    {
        public required string ContainerId { get; init; }
        public required FileDescriptor Fd { get; init; }
        public FileDescriptor? OomControl { get; init; }
        public string? MemoryEventsDir { get; init; }
        public string? CgroupDir { get; init; }
        public ulong LastOomKills { get; set; }
    }

    private readonly Action<string> _onOom;
    private readonly object _gate = new();
    private readonly List<Watch> _watches = new();
    private readonly CancelSignal _wake = new();
    private Thread? _thread;

    public OomWatcher(Action<string> onOom) => _onOom = onOom;

    public void Add(string containerId, CgroupInfo cgroup)
    {
        Watch? watch = cgroup.IsUnified ? WatchV2(containerId, cgroup.UnifiedPath!) : WatchV1(containerId, cgroup.Controller("memory"));
        if (watch == null) return;
        lock (_gate)
        {
            _watches.Add(watch);
            if (_thread == null)
            {
                _thread = new Thread(Loop, maxStackSize: 128 * 1024) { IsBackground = true, Name = "oom-watcher" };
                _thread.Start();
            }
        }
        Wake();
    }

    public void Remove(string containerId)
    {
        lock (_gate)
        {
            foreach (var w in _watches.Where(w => w.ContainerId == containerId).ToList())
            {
                _watches.Remove(w);
                w.Fd.Dispose();
                w.OomControl?.Dispose();
            }
        }
        Wake();
    }

    private static Watch? WatchV1(string containerId, string? memoryDir)
    {
        if (memoryDir == null || !Directory.Exists(memoryDir)) return null;
        int efd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        if (efd < 0) return null;
        var eventFd = new FileDescriptor(efd);
        try
        {
            var oomControl = FileDescriptor.Open(Path.Combine(memoryDir, "memory.oom_control"), LibC.O_RDONLY);
            File.WriteAllText(Path.Combine(memoryDir, "cgroup.event_control"), $"{eventFd.Value} {oomControl.Value}");
            return new Watch
            {
                ContainerId = containerId, Fd = eventFd, OomControl = oomControl, CgroupDir = memoryDir,
                LastOomKills = ReadOomKills(memoryDir, false) ?? 0,
            };
        }
        catch (Exception e)
        {
            ShimLog.Warn($"oom watch for {containerId}: {e.Message}");
            eventFd.Dispose();
            return null;
        }
    }

    private static Watch? WatchV2(string containerId, string dir)
    {
        int ifd = LibC.inotify_init1(LibC.IN_CLOEXEC);
        if (ifd < 0) return null;
        var fd = new FileDescriptor(ifd);
        if (LibC.inotify_add_watch(fd.Value, Path.Combine(dir, "memory.events"), LibC.IN_MODIFY) < 0)
        {
            fd.Dispose();
            return null;
        }
        return new Watch
        {
            ContainerId = containerId, Fd = fd, MemoryEventsDir = dir, CgroupDir = dir,
            LastOomKills = ReadOomKills(dir, true) ?? 0,
        };
    }

    private void Wake() => _wake.Cancel(); // the eventfd is drained by the loop, so it works as a doorbell

    private unsafe void Loop()
    {
        byte* buffer = stackalloc byte[4096];
        while (true)
        {
            Watch[] watches;
            lock (_gate) watches = _watches.ToArray();
            var fds = new LibC.PollFd[watches.Length + 1];
            fds[0] = new LibC.PollFd { Fd = _wake.Fd, Events = LibC.POLLIN };
            for (int i = 0; i < watches.Length; i++)
                fds[i + 1] = new LibC.PollFd { Fd = watches[i].Fd.Value, Events = LibC.POLLIN };
            int rc;
            fixed (LibC.PollFd* p = fds) rc = LibC.poll(p, (nuint)fds.Length, -1);
            if (rc < 0) { if (LibC.LastErrno == LibC.EINTR) continue; Thread.Sleep(100); continue; }
            if (fds[0].Revents != 0) LibC.read(_wake.Fd, buffer, 8);
            for (int i = 0; i < watches.Length; i++)
            {
                if (fds[i + 1].Revents == 0) continue;
                var w = watches[i];
                lock (_gate) { if (!_watches.Contains(w)) continue; }
                if (LibC.read(w.Fd.Value, buffer, 4096) <= 0) continue;
                if (w.MemoryEventsDir == null && w.CgroupDir != null && !Directory.Exists(w.CgroupDir))
                {
                    // v1 also signals the eventfd when the cgroup is removed: that is not an OOM.
                    Remove(w.ContainerId);
                    continue;
                }
                ReportIfIncreased(w, eventFired: true);
            }
        }
    }

    /// <summary>Publishes a pending OOM of <paramref name="containerId"/> now (before its exit goes out).</summary>
    public void CheckNow(string containerId)
    {
        Watch? watch;
        lock (_gate) watch = _watches.FirstOrDefault(w => w.ContainerId == containerId);
        if (watch != null) ReportIfIncreased(watch, eventFired: false);
    }

    private void ReportIfIncreased(Watch w, bool eventFired)
    {
        bool unified = w.MemoryEventsDir != null;
        ulong? kills = ReadOomKills(w.CgroupDir!, unified);
        lock (_gate)
        {
            if (!_watches.Contains(w)) return;
            if (kills.HasValue)
            {
                if (kills.Value <= w.LastOomKills)
                {
                    // v1 notifies when the OOM starts, before the kill is counted: look again shortly.
                    if (eventFired) _ = Task.Delay(200).ContinueWith(_ => ReportIfIncreased(w, false), TaskScheduler.Default);
                    return;
                }
                w.LastOomKills = kills.Value;
            }
            else if (!eventFired)
            {
                return; // an old v1 kernel without the counter: only the eventfd tells
            }
            // Published under the lock so that a concurrent CheckNow cannot let the exit overtake it.
            try { _onOom(w.ContainerId); } catch (Exception e) { ShimLog.Error($"oom event: {e.Message}"); }
        }
    }

    private static ulong? ReadOomKills(string dir, bool unified)
    {
        var values = CgroupFiles.ReadKeyValues(dir, unified ? "memory.events" : "memory.oom_control");
        return values.TryGetValue("oom_kill", out var v) ? v : null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var w in _watches) { w.Fd.Dispose(); w.OomControl?.Dispose(); }
            _watches.Clear();
        }
    }
}
