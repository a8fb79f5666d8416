using System.Runtime.InteropServices;
using System.Text;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Store.Query;
using T = Tmds.Linux.LibC;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// The state at T in a tmpfs of its own, as the read-only layer of a replay that keeps nothing (no --keep, no
/// --cache). Why memory: a first replay writes every file of the moment, and creating thousands of inodes on the
/// node's file system is what that costs (on our reference machine's journal-less ext4, ~0.5 ms per inode for
/// minutes after a mass deletion; docs/cli.md, Measured), while a tmpfs creates one in microseconds. The overlay
/// mount of the container holds the tmpfs once it is mounted, so we detach ours right after Tasks.Create: the
/// memory is freed when the container's rootfs is unmounted, and nothing of ours is left mounted while it runs.
/// Bounded: only a state that fits a budget (a quarter of the available memory, at most 1 GiB, or --tmpfs-max)
/// goes into memory; a larger one is written into the state snapshot on disk as before.
/// </summary>
public sealed class StateTmpfs : IDisposable
{
    private const long Page = 4096;

    public string Dir { get; }
    public long Size { get; }
    private bool _mounted;

    private StateTmpfs(string dir, long size) => (Dir, Size, _mounted) = (dir, size, true);

    /// <summary>What a tmpfs must hold for a state: its size in bytes, and the xattr namespaces its entries use.</summary>
    public readonly record struct Needs(long Size, IReadOnlyCollection<string> XattrNamespaces);

    /// <summary>The default budget: a quarter of MemAvailable, at most 1 GiB.</summary>
    public static long DefaultBudget() => Math.Min(1L << 30, MemAvailable() / 4);

    /// <summary>
    /// Why <paramref name="state"/> does not go into a tmpfs of at most <paramref name="budget"/> bytes (null: it
    /// may; <paramref name="needs"/> is then what to ask of it).
    /// </summary>
    public static string? Unsuitable(RecordingState state, long budget, out Needs needs)
    {
        needs = default;
        if (budget <= 0) return "--tmpfs-max 0";
        if (Libc.geteuid() != 0) return "not root";
        var namespaces = new HashSet<string>(StringComparer.Ordinal);
        long pages = 0;
        foreach (var v in state.Entries.Values)
        {
            if (v.Type == EntryType.Absent) continue;
            // Every page of content (holes too: a bound, not an estimate), and one for a symlink target.
            if (v.Type == EntryType.File && v.HardLinkTo.Length == 0) pages += (v.Size + Page - 1) / Page;
            else if (v.Type == EntryType.Symlink) pages++;
            foreach (var x in v.Xattrs)
            {
                // Which namespaces a tmpfs holds depends on the kernel (user.* since Linux 6.6): TryMount probes the
                // ones named here. POSIX ACLs (system.*) are not probed; a state with them is written on disk.
                int dot = x.Key.AsSpan().IndexOf((byte)'.');
                var ns = dot > 0 ? Encoding.UTF8.GetString(x.Key, 0, dot) : "";
                if (ns is not ("trusted" or "security" or "user")) return $"an xattr a tmpfs may not hold ({RawPath.Escape(x.Key)})";
                namespaces.Add(ns);
            }
        }
        long size = (pages + 256) * Page; // a 1 MiB margin
        needs = new Needs(size, namespaces);
        return size > budget ? $"the state needs {Human.Bytes(size)} of memory, over the tmpfs budget of {Human.Bytes(budget)} (--tmpfs-max)" : null;
    }

    /// <summary>
    /// Mounts a tmpfs for <paramref name="needs"/> on the new directory <paramref name="dir"/>: null and
    /// <paramref name="why"/> when the kernel refuses the mount or one of the xattr namespaces the state uses.
    /// </summary>
    public static unsafe StateTmpfs? TryMount(string dir, Needs needs, out string why)
    {
        long size = needs.Size;
        Directory.CreateDirectory(dir);
        // Mode 0755 like an overlay upper directory; nosuid/nodev for our own view (the overlay does not inherit
        // them: setuid files and device nodes of the state work in the container as they did in the recording).
        var data = Encoding.ASCII.GetBytes($"size={size},mode=0755\0");
        int r;
        fixed (byte* src = "diffkeeper-replay\0"u8, target = Encoding.UTF8.GetBytes(dir + "\0"), type = "tmpfs\0"u8, d = data)
            r = T.mount(src, target, type, T.MS_NOSUID | T.MS_NODEV, d);
        if (r != 0)
        {
            why = $"mount of a tmpfs refused: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";
            return null;
        }
        var tmpfs = new StateTmpfs(dir, size);
        foreach (var ns in needs.XattrNamespaces)
            if (!Holds(dir, ns))
            {
                tmpfs.Dispose();
                why = $"this kernel's tmpfs holds no {ns}.* xattrs";
                return null;
            }
        why = "";
        return tmpfs;
    }

    /// <summary>Sets a probe xattr of namespace <paramref name="ns"/> on a scratch file of the tmpfs (removed again).</summary>
    private static unsafe bool Holds(string dir, string ns)
    {
        var probe = Path.Combine(dir, ".diffkeeper-probe");
        try
        {
            using var f = File.Create(probe);
            fixed (byte* name = Encoding.UTF8.GetBytes(ns + ".diffkeeper-probe\0"), value = "1"u8)
                return Libc.fsetxattr((int)f.SafeFileHandle.DangerousGetHandle(), name, value, 1, 0) == 0;
        }
        finally { File.Delete(probe); }
    }

    /// <summary>Lazily unmounts ours: a mount of the container's rootfs that holds it keeps it (and its memory) alive; otherwise it is gone.</summary>
    public unsafe void Detach()
    {
        if (!_mounted) return;
        fixed (byte* target = Encoding.UTF8.GetBytes(Dir + "\0")) T.umount2(target, T.MNT_DETACH);
        _mounted = false;
    }

    public void Dispose() => Detach();

    private static long MemAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal) &&
                    long.TryParse(line.AsSpan(13).Trim().TrimEnd("kB").Trim(), out var kib)) return kib * 1024;
        }
        catch (IOException) { }
        return 0;
    }
}
