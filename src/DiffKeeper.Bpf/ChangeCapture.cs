using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace DiffKeeper.Bpf;

/// <summary>
/// The kernel side of the flight recorder: bpf/diffkeeper.bpf.o loaded once per node. Mount namespaces are
/// tracked with <see cref="Track"/>; the kernel coalesces what their processes dirty into a dirty set keyed by
/// inode, which <see cref="Drain"/> takes on a timer. Thread-safe. See docs/bpf.md.
/// </summary>
public sealed unsafe class ChangeCapture : IDisposable
{
    /// <summary>The dirty set's default capacity (max_entries of dk_dirty in the BPF object).</summary>
    public const int DefaultDirtySetCapacity = 65536;

    private const string BtfPath = "/sys/kernel/btf/vmlinux";
    private const int CounterEvents = 0, CounterMerged = 1, CounterLost = 2, CounterCoalesced = 3, CounterCount = 4;
    private const int BatchSize = 1024;

    private readonly object _gate = new();
    private nint _obj;
    private readonly int _trackedFd, _dirtyFd, _countersFd, _trackedCgroupFd, _cgroupsActiveFd, _epochFd, _watchFd, _watchFsFd;
    /// <summary>The watched tree of each tracked cgroup that has one: its slot and root inode (the dk_watch key).</summary>
    private readonly Dictionary<ulong, (uint Slot, ulong Root)> _watches = new();
    /// <summary>Set in a slot given to dk_tracked_cg: the hooks drop the command's changes outside its watched tree.</summary>
    private const uint SlotWatched = 0x8000_0000;
    /// <summary>The last even value written to dk_epoch (the caches' generation between drains).</summary>
    private ulong _epoch;
    private readonly int _cpus;
    private readonly List<nint> _links = new();
    private readonly HashSet<ulong> _tracked = new();
    private readonly HashSet<ulong> _trackedCgroups = new();
    private readonly List<string> _hooks = new();
    private readonly Native.DirtyKey[] _keys = new Native.DirtyKey[BatchSize];
    private readonly Native.DirtyValue[] _values = new Native.DirtyValue[BatchSize];

    private ChangeCapture(nint obj, int trackedFd, int dirtyFd, int countersFd, int trackedCgroupFd, int cgroupsActiveFd, int epochFd,
        int watchFd, int watchFsFd, int capacity)
    {
        _obj = obj; _trackedFd = trackedFd; _dirtyFd = dirtyFd; _countersFd = countersFd; _trackedCgroupFd = trackedCgroupFd;
        _cgroupsActiveFd = cgroupsActiveFd; _epochFd = epochFd; _watchFd = watchFd; _watchFsFd = watchFsFd;
        DirtySetCapacity = capacity;
        _cpus = Native.libbpf_num_possible_cpus();
        if (_cpus <= 0) _cpus = Environment.ProcessorCount;
    }

    /// <summary>The object's file name, as `make build` and `make install` place it.</summary>
    public const string ObjectFileName = "diffkeeper.bpf.o";

    /// <summary>Where the object is found when nobody says: beside the executable (artifacts/bin), in the install
    /// layout's lib directory beside its bin directory, then /usr/local/lib/diffkeeper and /usr/lib/diffkeeper.
    /// Null when none exists.</summary>
    public static string? FindObject()
    {
        string exeDir = AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(exeDir, ObjectFileName),
            Path.GetFullPath(Path.Combine(exeDir, "..", "lib", "diffkeeper", ObjectFileName)),
            Path.Combine("/usr/local/lib/diffkeeper", ObjectFileName),
            Path.Combine("/usr/lib/diffkeeper", ObjectFileName),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Opens and loads the BPF object (programs verified, maps created); nothing is attached yet.</summary>
    public static ChangeCapture Load(string objectPath) => Load(objectPath, DefaultDirtySetCapacity);

    /// <summary>As <see cref="Load(string)"/>, with the dirty set sized to <paramref name="dirtySetCapacity"/> inodes
    /// (more inodes dirtied between two drains are counted as lost).</summary>
    public static ChangeCapture Load(string objectPath, int dirtySetCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dirtySetCapacity, 1);
        if (!File.Exists(objectPath))
            throw new BpfException($"the eBPF object {objectPath} does not exist (built by `make build` into artifacts/bin)", Native.ENOENT);
        if (!File.Exists(BtfPath))
            throw new BpfException($"the kernel has no BTF ({BtfPath} is missing; needs CONFIG_DEBUG_INFO_BTF=y): " +
                "the CO-RE eBPF programs cannot be relocated", Native.ENOENT);
        lock (LibbpfLog.Gate)
        {
            LibbpfLog.Clear();
            nint obj = Native.bpf_object__open_file(objectPath, 0);
            if (obj == 0)
            {
                int e = Marshal.GetLastPInvokeError();
                throw new BpfException($"libbpf could not open {objectPath}: {Errno(e)}{LibbpfLog.Tail()}", e);
            }
            try
            {
                nint tracked = FindMap(obj, "dk_tracked"), dirty = FindMap(obj, "dk_dirty"), counters = FindMap(obj, "dk_counters"),
                    trackedCgroups = FindMap(obj, "dk_tracked_cg"), cgroupsActive = FindMap(obj, "dk_cg_active"),
                    epoch = FindMap(obj, "dk_epoch"), watch = FindMap(obj, "dk_watch"), watchFs = FindMap(obj, "dk_watch_fs");
                Native.bpf_map__set_max_entries(dirty, (uint)dirtySetCapacity);
                SkipMissingCtimeTracepoints(obj);
                int rc = Native.bpf_object__load(obj);
                if (rc < 0) throw LoadError(-rc, objectPath);
                return new ChangeCapture(obj, Native.bpf_map__fd(tracked), Native.bpf_map__fd(dirty), Native.bpf_map__fd(counters),
                    Native.bpf_map__fd(trackedCgroups), Native.bpf_map__fd(cgroupsActive), Native.bpf_map__fd(epoch),
                    Native.bpf_map__fd(watch), Native.bpf_map__fd(watchFs), (int)Native.bpf_map__max_entries(dirty));
            }
            catch
            {
                Native.bpf_object__close(obj);
                throw;
            }
        }
    }

    /// <summary>The dirty set's capacity in inodes.</summary>
    public int DirtySetCapacity { get; }

    /// <summary>Whether the programs are attached to their tracepoints (while at least one namespace is tracked).</summary>
    public bool Attached { get { lock (_gate) return _links.Count > 0; } }

    /// <summary>Tests: attach as on a kernel without the timestamp tracepoints (set before the first Track).</summary>
    internal bool UseFallbackHooks { get; set; }

    /// <summary>The tracepoints the programs are attached to (empty while detached), e.g. for `diffkeeper doctor`.</summary>
    public IReadOnlyList<string> AttachedTracepoints { get { lock (_gate) return _hooks.ToArray(); } }

    /// <summary>Starts capturing what processes in mount namespace <paramref name="mountNamespace"/> (the inode
    /// number of /proc/PID/ns/mnt) change, tagged with <paramref name="slot"/>. Attaches the programs when this is
    /// the first tracked namespace. Tracking a namespace again replaces its slot.</summary>
    /// <summary>
    /// Whether an upper directory's file system reports its ctime changes through the multigrain timestamp
    /// tracepoints (ctime_ns_xchg / ctime_xchg_skip: ext4, xfs, btrfs and tmpfs since 6.13). Others set ctime through
    /// inode_set_ctime_to_ts, which <see cref="RequireCtimeSetHook"/> attaches.
    /// </summary>
    public static bool HasMultigrainTimestamps(string path)
    {
        try { return new DriveInfo(path).DriveFormat is "ext4" or "ext3" or "ext2" or "xfs" or "btrfs" or "tmpfs"; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Attaches inode_set_ctime_to_ts too (now when attached, else with the others from now on). Not attached by
    /// default, measured: overlayfs copies the upper inode's times into its own inode with it on EVERY write
    /// (ovl_copyattr), so the program ran per write(2) of every container — 1.5–2x the time of a loop of 64-byte
    /// writes — only to drop the overlay inode; on multigrain file systems the upper inode's own change arrives
    /// through ctime_ns_xchg anyway. Needed only for an upper directory on a file system without multigrain timestamps.
    /// </summary>
    public void RequireCtimeSetHook()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_ctimeSetWanted) return;
            _ctimeSetWanted = true;
            if (_links.Count == 0) return;
            for (nint prog = Native.bpf_object__next_program(_obj, 0); prog != 0; prog = Native.bpf_object__next_program(_obj, prog))
            {
                if (Marshal.PtrToStringUTF8(Native.bpf_program__name(prog)) != CtimeSetProgram) continue;
                if (!Native.bpf_program__autoload(prog)) continue; // no such tracepoint here: the fallback is attached
                if (TryAttach(prog) is var e and not 0 and not Native.ENOENT) throw AttachError(prog, e);
            }
        }
    }

    private const string CtimeSetProgram = "dk_ctime_set";
    private bool _ctimeSetWanted;

    public void Track(ulong mountNamespace, uint slot) => TrackKey(_trackedFd, _tracked, mountNamespace, slot, "mount namespace");

    /// <summary>Starts capturing what processes in the cgroup v2 <paramref name="cgroupId"/> (the inode number of
    /// its directory in the cgroup2 file system, what bpf_get_current_cgroup_id() returns) change, tagged with
    /// <paramref name="slot"/>: a recorded command (`diffkeeper record`) in the host's mount namespace. Only the
    /// exact cgroup: a process moved into a child cgroup is not tracked. With <paramref name="watched"/>, the kernel
    /// drops the command's changes outside that directory tree (on another file system, or not below its root; a
    /// nameless inode; see docs/bpf.md): give it only when no mount lies inside the tree, as the kernel's walk up
    /// the directories cannot cross one.</summary>
    public void TrackCgroup(ulong cgroupId, uint slot, WatchedTree? watched = null)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, SlotWatched);
        if (watched is not { } tree)
        {
            TrackKey(_trackedCgroupFd, _trackedCgroups, cgroupId, slot, "cgroup");
            return;
        }
        lock (_gate)
        {
            ThrowIfDisposed();
            // The tree first: from the moment the cgroup is tracked with the flag, the hooks look it up.
            ulong kdev = ((ulong)tree.DevMajor << 20) | tree.DevMinor;
            var key = new Native.WatchKey { Ino = tree.RootInode, Slot = slot };
            byte one = 1;
            if (Native.bpf_map_update_elem(_watchFsFd, &slot, &kdev, Native.BPF_ANY) < 0 ||
                Native.bpf_map_update_elem(_watchFd, &key, &one, Native.BPF_ANY) < 0)
            {
                int e = Marshal.GetLastPInvokeError();
                RemoveWatch(slot, tree.RootInode);
                throw new BpfException($"cannot track cgroup {cgroupId}'s watched tree: {Errno(e)}", e);
            }
            try { TrackKey(_trackedCgroupFd, _trackedCgroups, cgroupId, slot | SlotWatched, "cgroup"); }
            catch { RemoveWatch(slot, tree.RootInode); throw; }
            _watches[cgroupId] = (slot, tree.RootInode);
        }
    }

    /// <summary>Removes a slot's watched tree from the kernel's maps. Under <see cref="_gate"/>.</summary>
    private void RemoveWatch(uint slot, ulong root)
    {
        var key = new Native.WatchKey { Ino = root, Slot = slot };
        Native.bpf_map_delete_elem(_watchFd, &key);
        Native.bpf_map_delete_elem(_watchFsFd, &slot);
    }

    private void TrackKey(int mapFd, HashSet<ulong> set, ulong key, uint slot, string what)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (Native.bpf_map_update_elem(mapFd, &key, &slot, Native.BPF_ANY) < 0)
            {
                int e = Marshal.GetLastPInvokeError();
                throw new BpfException($"cannot track {what} {key}: {Errno(e)}" +
                    (e == Native.E2BIG ? $" (the tracked-{what} map is full)" : ""), e);
            }
            bool added = set.Add(key);
            PublishCgroupCount(set);
            NextEpoch();
            if (_links.Count > 0) return;
            try { AttachAll(); }
            catch
            {
                if (added) { set.Remove(key); Native.bpf_map_delete_elem(mapFd, &key); PublishCgroupCount(set); }
                throw;
            }
        }
    }

    /// <summary>Stops capturing namespace <paramref name="mountNamespace"/>; what it dirtied before stays in the
    /// dirty set for the next drain. Detaches the programs when no namespace is tracked any more: attached, they run
    /// on every page dirtied and every ctime change of the whole node (~0.1–0.2 µs each to find the writer
    /// untracked), which an idle node need not pay; attaching all of them again takes ~0.5–2 ms, once.</summary>
    public void Untrack(ulong mountNamespace) => UntrackKey(_trackedFd, _tracked, mountNamespace, "mount namespace");

    /// <summary>Stops capturing cgroup <paramref name="cgroupId"/> (see <see cref="Untrack"/>).</summary>
    public void UntrackCgroup(ulong cgroupId)
    {
        lock (_gate)
        {
            UntrackKey(_trackedCgroupFd, _trackedCgroups, cgroupId, "cgroup");
            // After the cgroup: the hooks find no slot before the tree goes (without a tree, a flagged slot keeps all).
            if (_watches.Remove(cgroupId, out var w)) RemoveWatch(w.Slot, w.Root);
        }
    }

    /// <summary>Tells the programs how many cgroups are tracked (dk_cg_active), after <paramref name="changed"/>
    /// changed: with none, they skip the cgroup lookup. Under <see cref="_gate"/>.</summary>
    private void PublishCgroupCount(HashSet<ulong> changed)
    {
        if (!ReferenceEquals(changed, _trackedCgroups)) return;
        uint zero = 0, count = (uint)_trackedCgroups.Count;
        if (Native.bpf_map_update_elem(_cgroupsActiveFd, &zero, &count, Native.BPF_ANY) < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new BpfException($"cannot update the tracked-cgroup count: {Errno(e)}", e);
        }
    }

    /// <summary>Moves the programs' per-CPU caches (dk_seen, dk_writer) to a new generation: what they hold is not
    /// trusted any more. Before a drain <paramref name="draining"/> makes the generation odd (no coalescing while the
    /// dirty set is being taken); after it, and after a Track/Untrack, even again. Derived from the last even value,
    /// so a failed write never leaves the parity wrong for the next one. Under <see cref="_gate"/>.</summary>
    private void NextEpoch(bool draining = false)
    {
        ulong value = _epoch + (draining ? 1UL : 2UL);
        uint key = 0;
        if (Native.bpf_map_update_elem(_epochFd, &key, &value, Native.BPF_ANY) < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new BpfException($"cannot update the capture's generation (dk_epoch): {Errno(e)}", e);
        }
        if (!draining) _epoch = value;
    }

    private void UntrackKey(int mapFd, HashSet<ulong> set, ulong key, string what)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (Native.bpf_map_delete_elem(mapFd, &key) < 0)
            {
                int e = Marshal.GetLastPInvokeError();
                if (e != Native.ENOENT) throw new BpfException($"cannot untrack {what} {key}: {Errno(e)}", e);
            }
            set.Remove(key);
            PublishCgroupCount(set);
            NextEpoch();
            if (_tracked.Count > 0 || _trackedCgroups.Count > 0) return;
            _idleSince = Environment.TickCount64;
            if (DetachLinger == TimeSpan.Zero) DetachAll();
        }
    }

    /// <summary>
    /// How long the programs stay attached after the last namespace or cgroup is untracked (zero: detached at once,
    /// by that Untrack). A daemon sets a few seconds and calls <see cref="DetachIfIdle"/> from its frame loop: then
    /// neither Untrack (on the shim's Delete path, via Exited) nor the next Track (its Create path) pays the
    /// detach and attach (the tracepoints' static keys are patched in the kernel text each time), and containers
    /// that follow each other keep the programs attached.
    /// </summary>
    public TimeSpan DetachLinger { get; set; }

    private long _idleSince;

    /// <summary>Detaches the programs when nothing has been tracked for <see cref="DetachLinger"/>; true if it did.</summary>
    public bool DetachIfIdle()
    {
        lock (_gate)
        {
            if (_obj == 0 || _links.Count == 0 || _tracked.Count > 0 || _trackedCgroups.Count > 0) return false;
            if (Environment.TickCount64 - _idleSince < (long)DetachLinger.TotalMilliseconds) return false;
            DetachAll();
            return true;
        }
    }

    /// <summary>Takes (and removes from the kernel) the whole dirty set, appending it to <paramref name="into"/>;
    /// returns how many entries were added. An inode dirtied again during the drain is either in this drain or
    /// in the next one, never lost.</summary>
    public int Drain(List<DirtyInode> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        lock (_gate)
        {
            ThrowIfDisposed();
            long offset = BootToRealtimeOffset();
            int total = 0;
            // The hash map's batch token is a u32 bucket index; libbpf documents it as key-sized: use a key.
            Native.DirtyKey token = default, outToken = default;
            bool first = true;
            NextEpoch(draining: true);
            try
            {
                fixed (Native.DirtyKey* keys = _keys)
                fixed (Native.DirtyValue* values = _values)
                {
                    while (true)
                    {
                        uint count = BatchSize;
                        int rc = Native.bpf_map_lookup_and_delete_batch(_dirtyFd, first ? null : &token, &outToken, keys, values, &count, 0);
                        int e = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
                        if (rc < 0 && e != Native.ENOENT)
                            throw new BpfException($"draining the dirty set failed: {Errno(e)}", e);
                        for (int i = 0; i < count; i++) into.Add(Decode(in keys[i], in values[i], offset));
                        total += (int)count;
                        if (rc < 0) break; // ENOENT: the last bucket has been visited
                        token = outToken;
                        first = false;
                    }
                }
            }
            finally { NextEpoch(); }
            return total;
        }
    }

    /// <summary>The kernel counters since load, summed over CPUs.</summary>
    public CaptureCounters Counters
    {
        get
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                Span<ulong> sums = stackalloc ulong[CounterCount];
                var perCpu = new ulong[_cpus];
                fixed (ulong* values = perCpu)
                {
                    for (uint k = 0; k < CounterCount; k++)
                    {
                        uint key = k;
                        if (Native.bpf_map_lookup_elem(_countersFd, &key, values) < 0)
                        {
                            int e = Marshal.GetLastPInvokeError();
                            throw new BpfException($"reading the capture counters failed: {Errno(e)}", e);
                        }
                        foreach (ulong v in perCpu) sums[(int)k] += v;
                    }
                }
                return new CaptureCounters(sums[CounterEvents], sums[CounterMerged], sums[CounterLost], sums[CounterCoalesced]);
            }
        }
    }

    /// <summary>The kernel ids of the loaded programs (as `bpftool prog show id N` lists them): for tests and diagnostics.</summary>
    internal IReadOnlyList<uint> ProgramIds()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var ids = new List<uint>();
            for (nint prog = Native.bpf_object__next_program(_obj, 0); prog != 0; prog = Native.bpf_object__next_program(_obj, prog))
            {
                // struct bpf_prog_info begins with { __u32 type; __u32 id; }: the kernel fills what fits in info_len.
                ulong info = 0;
                uint len = sizeof(ulong);
                if (Native.bpf_obj_get_info_by_fd(Native.bpf_program__fd(prog), &info, &len) == 0) ids.Add((uint)(info >> 32));
            }
            return ids;
        }
    }

    /// <summary>The inode number of /proc/<paramref name="pid"/>/ns/mnt: the key <see cref="Track"/> takes.</summary>
    public static ulong MountNamespaceOf(int pid)
    {
        // The link reads "mnt:[4026531841]"; its inode number is the namespace's ns.inum the programs compare.
        string path = $"/proc/{pid}/ns/mnt";
        string? target;
        try { target = new FileInfo(path).LinkTarget; }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new BpfException($"cannot read {path}: {ex.Message}");
        }
        if (target is null || !target.StartsWith("mnt:[", StringComparison.Ordinal) || !target.EndsWith(']')
            || !ulong.TryParse(target.AsSpan(5, target.Length - 6), out ulong inum))
            throw new BpfException($"cannot read {path}: " + (target is null ? "no such process" : $"unexpected link \"{target}\""), Native.ENOENT);
        return inum;
    }

    /// <summary>The kernel's internal dev_t (MAJOR&lt;&lt;20 | MINOR, as in super_block.s_dev) in the encoding
    /// user space sees in st_dev (glibc's gnu_dev_makedev).</summary>
    public static ulong KernelDevToUser(ulong kdev)
    {
        ulong major = kdev >> 20, minor = kdev & 0xfffff;
        return ((major & 0xfffff000UL) << 32) | ((major & 0xfffUL) << 8) | ((minor & 0xffffff00UL) << 12) | (minor & 0xffUL);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_obj == 0) return;
            DetachAll();
            _tracked.Clear();
            Native.bpf_object__close(_obj); // closes the map and program fds: the kernel frees them
            _obj = 0;
        }
    }

    private static DirtyInode Decode(in Native.DirtyKey k, in Native.DirtyValue v, long offset)
    {
        string comm;
        fixed (byte* c = v.Comm)
        {
            int n = 0;
            while (n < 16 && c[n] != 0) n++;
            comm = Encoding.UTF8.GetString(c, n);
        }
        return new DirtyInode(KernelDevToUser(k.Dev), k.Ino, v.Slot, (ChangeKinds)v.Kinds,
            (long)v.FirstNs + offset, (long)v.LastNs + offset, (int)v.Pid, comm, v.Merged);
    }

    /// <summary>CLOCK_REALTIME − CLOCK_BOOTTIME now (read per drain, so that clock steps are followed).</summary>
    private static long BootToRealtimeOffset()
    {
        Native.Timespec b0, r, b1;
        Native.clock_gettime(Native.CLOCK_BOOTTIME, &b0);
        Native.clock_gettime(Native.CLOCK_REALTIME, &r);
        Native.clock_gettime(Native.CLOCK_BOOTTIME, &b1);
        long boot = (Ns(b0) + Ns(b1)) / 2;
        return Ns(r) - boot;
        static long Ns(Native.Timespec t) => t.Sec * 1_000_000_000L + t.Nsec;
    }

    /// <summary>Attaches every program to its tracepoint. The timestamp (ctime) tracepoints exist since Linux
    /// 6.13; where one is missing, the writeback_mark_inode_dirty fallback is attached instead (see the BPF C).</summary>
    private void AttachAll()
    {
        lock (LibbpfLog.Gate)
        {
            LibbpfLog.Clear();
            var fallbacks = new List<nint>();
            bool ctimeMissing = false;
            for (nint prog = Native.bpf_object__next_program(_obj, 0); prog != 0; prog = Native.bpf_object__next_program(_obj, prog))
            {
                string name = Marshal.PtrToStringUTF8(Native.bpf_program__name(prog)) ?? "?";
                if (name.StartsWith("dk_fallback_", StringComparison.Ordinal)) { fallbacks.Add(prog); continue; }
                bool ctime = name.StartsWith("dk_ctime_", StringComparison.Ordinal);
                if (ctime && (UseFallbackHooks || !Native.bpf_program__autoload(prog))) { ctimeMissing = true; continue; } // not loaded: see SkipMissingCtimeTracepoints
                if (name == CtimeSetProgram && !_ctimeSetWanted) continue; // see RequireCtimeSetHook
                int e = TryAttach(prog);
                if (e == 0) continue;
                if (e == Native.ENOENT && ctime) { ctimeMissing = true; continue; }
                throw AttachError(prog, e);
            }
            if (!ctimeMissing) return;
            foreach (nint prog in fallbacks)
                if (TryAttach(prog) is var e and not 0) throw AttachError(prog, e);
        }
    }

    private int TryAttach(nint prog)
    {
        nint link = Native.bpf_program__attach(prog);
        if (link == 0) return Marshal.GetLastPInvokeError();
        _links.Add(link);
        _hooks.Add(TracepointOf(prog));
        return 0;
    }

    private BpfException AttachError(nint prog, int e)
    {
        DetachAll();
        string name = Marshal.PtrToStringUTF8(Native.bpf_program__name(prog)) ?? "?";
        string why = e switch
        {
            Native.ENOENT => $"the kernel has no tracepoint {TracepointOf(prog)} (needed by {name})",
            Native.EPERM or Native.EACCES => "permission denied (needs root, or CAP_BPF + CAP_PERFMON)",
            _ => Errno(e),
        };
        return new BpfException($"attaching {name} failed: {why}{LibbpfLog.Tail()}", e);
    }

    private static string TracepointOf(nint prog)
    {
        string section = Marshal.PtrToStringUTF8(Native.bpf_program__section_name(prog)) ?? "?";
        int slash = section.IndexOf('/');
        return slash < 0 ? section : section[(slash + 1)..];
    }

    private void DetachAll()
    {
        foreach (nint link in _links) Native.bpf_link__destroy(link);
        _links.Clear();
        _hooks.Clear();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_obj == 0, this);

    /// <summary>
    /// The programs are BTF-typed tracepoint programs (tp_btf): the kernel resolves each one's tracepoint when it
    /// LOADS it, so a program whose tracepoint this kernel lacks would fail the whole object. The timestamp (ctime)
    /// tracepoints exist since Linux 6.13: where one is missing from the kernel's BTF (its btf_trace_NAME typedef),
    /// its program is not loaded, and <see cref="AttachAll"/> attaches the writeback_mark_inode_dirty fallback instead.
    /// </summary>
    private static void SkipMissingCtimeTracepoints(nint obj)
    {
        nint btf = Native.btf__load_vmlinux_btf();
        if (btf == 0) return; // the load itself then says what is wrong
        try
        {
            for (nint prog = Native.bpf_object__next_program(obj, 0); prog != 0; prog = Native.bpf_object__next_program(obj, prog))
            {
                string name = Marshal.PtrToStringUTF8(Native.bpf_program__name(prog)) ?? "";
                if (!name.StartsWith("dk_ctime_", StringComparison.Ordinal)) continue;
                if (Native.btf__find_by_name_kind(btf, "btf_trace_" + TracepointOf(prog), Native.BTF_KIND_TYPEDEF) < 0)
                    Native.bpf_program__set_autoload(prog, false);
            }
        }
        finally { Native.btf__free(btf); }
    }

    private static nint FindMap(nint obj, string name)
    {
        nint map = Native.bpf_object__find_map_by_name(obj, name);
        if (map == 0) throw new BpfException($"the eBPF object has no map {name}: it is not DiffKeeper's diffkeeper.bpf.o or is out of date");
        return map;
    }

    private static BpfException LoadError(int e, string path)
    {
        string why = e switch
        {
            Native.EPERM or Native.EACCES => "permission denied: loading eBPF needs root or CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN on some kernels)",
            Native.ENOMEM => "out of memory (or the locked-memory limit, RLIMIT_MEMLOCK, on kernels before 5.11)",
            Native.EINVAL or Native.ENOTSUP => "the kernel rejected the programs (verifier, missing BTF, or BTF-typed tracepoint programs (tp_btf) unsupported)",
            Native.ENOENT => "a type or tracepoint the programs need is missing from the kernel's BTF",
            _ => Errno(e),
        };
        return new BpfException($"loading {path} into the kernel failed: {why}{LibbpfLog.Tail()}", e);
    }

    internal static string Errno(int e)
    {
        if (e < LibbpfErrnoStart) return $"{Marshal.GetPInvokeErrorMessage(e)} (errno {e})";
        // libbpf's own codes (LIBBPF_ERRNO__FORMAT, __KVER, __VERIFY, ...) have texts only libbpf knows
        byte* buf = stackalloc byte[256];
        Native.libbpf_strerror(e, buf, 256);
        return $"{Marshal.PtrToStringUTF8((nint)buf)} (libbpf error {e})";
    }

    private const int LibbpfErrnoStart = 4000;

    /// <summary>libbpf's diagnostics (warnings and info) are captured here instead of stderr, and the last lines
    /// are appended to the exception that follows a failure.</summary>
    private static class LibbpfLog
    {
        public static readonly object Gate = new();
        private static readonly Queue<string> Lines = new();
        private const int MaxLines = 30;

        static LibbpfLog() => Native.libbpf_set_print((nint)(delegate* unmanaged[Cdecl]<int, nint, nint, int>)&Print);

        public static void Clear() { lock (Lines) Lines.Clear(); }

        public static string Tail()
        {
            lock (Lines) return Lines.Count == 0 ? "" : "\n" + string.Join("\n", Lines);
        }

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static int Print(int level, nint format, nint args)
        {
            if (level > 1) return 0; // LIBBPF_DEBUG: the verifier log etc. is only printed at WARN on failure anyway
            byte* buf = stackalloc byte[1024];
            int n = Native.vsnprintf(buf, 1024, format, args);
            if (n <= 0) return 0;
            string line = Encoding.UTF8.GetString(buf, Math.Min(n, 1023)).TrimEnd('\n');
            if (!line.StartsWith("libbpf: ", StringComparison.Ordinal)) line = "libbpf: " + line;
            lock (Lines)
            {
                Lines.Enqueue(line);
                while (Lines.Count > MaxLines) Lines.Dequeue();
            }
            return 0;
        }
    }
}
