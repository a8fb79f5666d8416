using DiffKeeper.Shim.Events;
using Google.Protobuf.WellKnownTypes;
using V1 = DiffKeeper.Shim.Protos.CgroupsV1;
using V2 = DiffKeeper.Shim.Protos.CgroupsV2;

namespace DiffKeeper.Shim.Cgroups;

/// <summary>
/// Builds the Stats RPC answer from cgroup files: <c>io.containerd.cgroups.v1.Metrics</c> on a v1/hybrid host,
/// <c>io.containerd.cgroups.v2.Metrics</c> on a unified one, packed with the bare type URL containerd expects.
/// </summary>
internal static class StatsCollector
{
    private const ulong NanosPerTick = 10_000_000; // USER_HZ = 100

    public static Any Collect(CgroupInfo cgroup) =>
        TypeUrls.PackBare(cgroup.IsUnified ? (Google.Protobuf.IMessage)CollectV2(cgroup.UnifiedPath!) : CollectV1(cgroup));

    private static V1.Metrics CollectV1(CgroupInfo cg)
    {
        var metrics = new V1.Metrics();
        var pids = cg.Controller("pids");
        if (pids != null)
            metrics.Pids = new V1.PidsStat
            {
                Current = CgroupFiles.ReadUInt(pids, "pids.current"),
                Limit = Unlimited(CgroupFiles.ReadUInt(pids, "pids.max")),
            };

        var cpuacct = cg.Controller("cpuacct");
        var cpu = cg.Controller("cpu");
        if (cpuacct != null || cpu != null)
        {
            var usage = new V1.CPUUsage { Total = CgroupFiles.ReadUInt(cpuacct, "cpuacct.usage") };
            var stat = CgroupFiles.ReadKeyValues(cpuacct, "cpuacct.stat");
            usage.User = stat.Get("user") * NanosPerTick;
            usage.Kernel = stat.Get("system") * NanosPerTick;
            foreach (var line in CgroupFiles.ReadLines(cpuacct, "cpuacct.usage_percpu"))
                foreach (var v in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    if (ulong.TryParse(v, out var n)) usage.PerCpu.Add(n);
            var throttle = CgroupFiles.ReadKeyValues(cpu, "cpu.stat");
            metrics.Cpu = new V1.CPUStat
            {
                Usage = usage,
                Throttling = new V1.Throttle
                {
                    Periods = throttle.Get("nr_periods"),
                    ThrottledPeriods = throttle.Get("nr_throttled"),
                    ThrottledTime = throttle.Get("throttled_time"),
                },
            };
        }

        var memory = cg.Controller("memory");
        if (memory != null)
        {
            metrics.Memory = MemoryV1(memory);
            var oom = CgroupFiles.ReadKeyValues(memory, "memory.oom_control");
            metrics.MemoryOomControl = new V1.MemoryOomControl
            {
                OomKillDisable = oom.Get("oom_kill_disable"), UnderOom = oom.Get("under_oom"), OomKill = oom.Get("oom_kill"),
            };
        }

        var blkio = cg.Controller("blkio");
        if (blkio != null) metrics.Blkio = BlkioV1(blkio);
        return metrics;
    }

    private static ulong Unlimited(ulong v) => v == ulong.MaxValue ? 0 : v;

    private static V1.MemoryStat MemoryV1(string dir)
    {
        var s = CgroupFiles.ReadKeyValues(dir, "memory.stat");
        return new V1.MemoryStat
        {
            Cache = s.Get("cache"), Rss = s.Get("rss"), RssHuge = s.Get("rss_huge"), MappedFile = s.Get("mapped_file"),
            Dirty = s.Get("dirty"), Writeback = s.Get("writeback"), PgPgIn = s.Get("pgpgin"), PgPgOut = s.Get("pgpgout"),
            PgFault = s.Get("pgfault"), PgMajFault = s.Get("pgmajfault"), InactiveAnon = s.Get("inactive_anon"),
            ActiveAnon = s.Get("active_anon"), InactiveFile = s.Get("inactive_file"), ActiveFile = s.Get("active_file"),
            Unevictable = s.Get("unevictable"), HierarchicalMemoryLimit = s.Get("hierarchical_memory_limit"),
            HierarchicalSwapLimit = s.Get("hierarchical_memsw_limit"), TotalCache = s.Get("total_cache"),
            TotalRss = s.Get("total_rss"), TotalRssHuge = s.Get("total_rss_huge"), TotalMappedFile = s.Get("total_mapped_file"),
            TotalDirty = s.Get("total_dirty"), TotalWriteback = s.Get("total_writeback"), TotalPgPgIn = s.Get("total_pgpgin"),
            TotalPgPgOut = s.Get("total_pgpgout"), TotalPgFault = s.Get("total_pgfault"), TotalPgMajFault = s.Get("total_pgmajfault"),
            TotalInactiveAnon = s.Get("total_inactive_anon"), TotalActiveAnon = s.Get("total_active_anon"),
            TotalInactiveFile = s.Get("total_inactive_file"), TotalActiveFile = s.Get("total_active_file"),
            TotalUnevictable = s.Get("total_unevictable"),
            Usage = MemoryEntry(dir, "memory"),
            Swap = MemoryEntry(dir, "memory.memsw"),
            Kernel = MemoryEntry(dir, "memory.kmem"),
            KernelTcp = MemoryEntry(dir, "memory.kmem.tcp"),
        };
    }

    private static V1.MemoryEntry MemoryEntry(string dir, string prefix) => new()
    {
        Usage = CgroupFiles.ReadUInt(dir, prefix + ".usage_in_bytes"),
        Limit = CgroupFiles.ReadUInt(dir, prefix + ".limit_in_bytes"),
        Max = CgroupFiles.ReadUInt(dir, prefix + ".max_usage_in_bytes"),
        Failcnt = CgroupFiles.ReadUInt(dir, prefix + ".failcnt"),
    };

    private static V1.BlkIOStat BlkioV1(string dir)
    {
        var stat = new V1.BlkIOStat();
        // The CFQ files are empty on modern kernels; the throttle ones are what containerd falls back to.
        var bytes = BlkioEntries(dir, "blkio.io_service_bytes_recursive");
        if (bytes.Count == 0) bytes = BlkioEntries(dir, "blkio.throttle.io_service_bytes_recursive");
        var ios = BlkioEntries(dir, "blkio.io_serviced_recursive");
        if (ios.Count == 0) ios = BlkioEntries(dir, "blkio.throttle.io_serviced_recursive");
        stat.IoServiceBytesRecursive.AddRange(bytes);
        stat.IoServicedRecursive.AddRange(ios);
        return stat;
    }

    private static List<V1.BlkIOEntry> BlkioEntries(string dir, string file)
    {
        var entries = new List<V1.BlkIOEntry>();
        foreach (var line in CgroupFiles.ReadLines(dir, file))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 3) continue; // "Total N"
            var dev = f[0].Split(':');
            if (dev.Length != 2 || !ulong.TryParse(dev[0], out var major) || !ulong.TryParse(dev[1], out var minor)) continue;
            if (!ulong.TryParse(f[2], out var value)) continue;
            entries.Add(new V1.BlkIOEntry
            {
                Op = f[1], Major = major, Minor = minor, Value = value, Device = CgroupFiles.DeviceName(major, minor),
            });
        }
        return entries;
    }

    private static V2.Metrics CollectV2(string dir)
    {
        var cpu = CgroupFiles.ReadKeyValues(dir, "cpu.stat");
        var mem = CgroupFiles.ReadKeyValues(dir, "memory.stat");
        var events = CgroupFiles.ReadKeyValues(dir, "memory.events");
        var metrics = new V2.Metrics
        {
            Pids = new V2.PidsStat
            {
                Current = CgroupFiles.ReadUInt(dir, "pids.current"), Limit = Unlimited(CgroupFiles.ReadUInt(dir, "pids.max")),
            },
            Cpu = new V2.CPUStat
            {
                UsageUsec = cpu.Get("usage_usec"), UserUsec = cpu.Get("user_usec"), SystemUsec = cpu.Get("system_usec"),
                NrPeriods = cpu.Get("nr_periods"), NrThrottled = cpu.Get("nr_throttled"), ThrottledUsec = cpu.Get("throttled_usec"),
            },
            Memory = new V2.MemoryStat
            {
                Anon = mem.Get("anon"), File = mem.Get("file"), KernelStack = mem.Get("kernel_stack"), Slab = mem.Get("slab"),
                Sock = mem.Get("sock"), Shmem = mem.Get("shmem"), FileMapped = mem.Get("file_mapped"),
                FileDirty = mem.Get("file_dirty"), FileWriteback = mem.Get("file_writeback"), AnonThp = mem.Get("anon_thp"),
                InactiveAnon = mem.Get("inactive_anon"), ActiveAnon = mem.Get("active_anon"),
                InactiveFile = mem.Get("inactive_file"), ActiveFile = mem.Get("active_file"), Unevictable = mem.Get("unevictable"),
                SlabReclaimable = mem.Get("slab_reclaimable"), SlabUnreclaimable = mem.Get("slab_unreclaimable"),
                Pgfault = mem.Get("pgfault"), Pgmajfault = mem.Get("pgmajfault"),
                WorkingsetRefault = mem.Get("workingset_refault"), WorkingsetActivate = mem.Get("workingset_activate"),
                WorkingsetNodereclaim = mem.Get("workingset_nodereclaim"), Pgrefill = mem.Get("pgrefill"),
                Pgscan = mem.Get("pgscan"), Pgsteal = mem.Get("pgsteal"), Pgactivate = mem.Get("pgactivate"),
                Pgdeactivate = mem.Get("pgdeactivate"), Pglazyfree = mem.Get("pglazyfree"), Pglazyfreed = mem.Get("pglazyfreed"),
                ThpFaultAlloc = mem.Get("thp_fault_alloc"), ThpCollapseAlloc = mem.Get("thp_collapse_alloc"),
                Usage = CgroupFiles.ReadUInt(dir, "memory.current"), UsageLimit = CgroupFiles.ReadUInt(dir, "memory.max"),
                SwapUsage = CgroupFiles.ReadUInt(dir, "memory.swap.current"), SwapLimit = CgroupFiles.ReadUInt(dir, "memory.swap.max"),
            },
            MemoryEvents = new V2.MemoryEvents
            {
                Low = events.Get("low"), High = events.Get("high"), Max = events.Get("max"), Oom = events.Get("oom"),
                OomKill = events.Get("oom_kill"),
            },
            Io = new V2.IOStat(),
        };
        foreach (var line in CgroupFiles.ReadLines(dir, "io.stat"))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0) continue;
            var dev = f[0].Split(':');
            if (dev.Length != 2 || !ulong.TryParse(dev[0], out var major) || !ulong.TryParse(dev[1], out var minor)) continue;
            var entry = new V2.IOEntry { Major = major, Minor = minor };
            foreach (var kv in f.Skip(1))
            {
                var p = kv.Split('=');
                if (p.Length != 2 || !ulong.TryParse(p[1], out var v)) continue;
                switch (p[0])
                {
                    case "rbytes": entry.Rbytes = v; break;
                    case "wbytes": entry.Wbytes = v; break;
                    case "rios": entry.Rios = v; break;
                    case "wios": entry.Wios = v; break;
                }
            }
            metrics.Io.Usage.Add(entry);
        }
        return metrics;
    }
}
