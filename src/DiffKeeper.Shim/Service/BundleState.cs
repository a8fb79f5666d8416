using DiffKeeper.Shim.Runc;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// What the <c>delete</c> subcommand needs but cannot learn from its arguments (it gets no Create request):
/// the runc binary and root, and for the recorder the rootfs layout, the daemon's answer to Track (recording id,
/// spool dir), the container description sent to it (base64 protobuf ContainerInfo) and, once the exit state is
/// frozen, the spool entry (so the crash path never freezes the same exit twice). Saved in the bundle as
/// <c>diffkeeper-shim.state</c>, one <c>key=value</c> per line, replaced atomically.
/// </summary>
internal sealed record BundleState(string RuncBinary, string RuncRoot, bool SystemdCgroup, string? UpperDir)
{
    public string? RootfsType { get; init; }
    public DateTime? CreatedAt { get; init; }
    public ulong RecordingId { get; init; }
    /// <summary>False only when the daemon said not to record (or the spec's io.diffkeeper/record=false).</summary>
    public bool Record { get; init; } = true;
    public string? SpoolDir { get; init; }
    public string? ContainerInfo { get; init; }
    public string? FrozenEntry { get; init; }

    public void Save(string bundle)
    {
        var path = new BundlePaths(bundle).State;
        var tmp = path + ".tmp";
        var text = $"runc_binary={RuncBinary}\nrunc_root={RuncRoot}\nsystemd_cgroup={(SystemdCgroup ? "true" : "false")}\nupperdir={UpperDir}\n";
        if (RootfsType != null) text += $"rootfs_type={RootfsType}\n";
        if (CreatedAt is { } created) text += $"created_at_ns={ToUnixNanos(created)}\n";
        if (RecordingId != 0) text += $"recording_id={RecordingId}\n";
        if (!Record) text += "record=false\n";
        if (SpoolDir != null) text += $"spool_dir={SpoolDir}\n";
        if (ContainerInfo != null) text += $"container_info={ContainerInfo}\n";
        if (FrozenEntry != null) text += $"frozen_entry={FrozenEntry}\n";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Load, change, save: for the recorder's additions after Create saved the runc part.</summary>
    public static void Update(string bundle, string ns, Func<BundleState, BundleState> change) =>
        change(Load(bundle, ns)).Save(bundle);

    /// <summary>The saved state, or containerd's defaults for this namespace when nothing was saved.</summary>
    public static BundleState Load(string bundle, string ns)
    {
        var state = new BundleState("runc", Path.Combine(RuncSettings.DefaultRoot, ns), false, null);
        var path = new BundlePaths(bundle).State;
        if (!File.Exists(path)) return state;
        foreach (var line in File.ReadAllLines(path))
        {
            int eq = line.IndexOf('=');
            if (eq <= 0) continue;
            var value = line[(eq + 1)..];
            state = line[..eq] switch
            {
                "runc_binary" when value.Length > 0 => state with { RuncBinary = value },
                "runc_root" when value.Length > 0 => state with { RuncRoot = value },
                "systemd_cgroup" => state with { SystemdCgroup = value == "true" },
                "upperdir" => state with { UpperDir = value.Length > 0 ? value : null },
                "rootfs_type" => state with { RootfsType = value },
                "created_at_ns" when long.TryParse(value, out var ns2) => state with { CreatedAt = FromUnixNanos(ns2) },
                "recording_id" when ulong.TryParse(value, out var rid) => state with { RecordingId = rid },
                "record" => state with { Record = value != "false" },
                "spool_dir" when value.Length > 0 => state with { SpoolDir = value },
                "container_info" when value.Length > 0 => state with { ContainerInfo = value },
                "frozen_entry" when value.Length > 0 => state with { FrozenEntry = value },
                _ => state,
            };
        }
        return state;
    }

    public static long ToUnixNanos(DateTime t) => (t.ToUniversalTime() - DateTime.UnixEpoch).Ticks * 100;
    public static DateTime FromUnixNanos(long ns) => DateTime.UnixEpoch.AddTicks(ns / 100);
}
