using System.Globalization;
using DiffKeeper.Common.Cgroups;
using DiffKeeper.Common.Mounts;
using DiffKeeper.Store.Native;

namespace DiffKeeper.Cli.Record;

/// <summary>
/// The recorded command's own cgroup in the cgroup v2 hierarchy (a pure v2 host: /sys/fs/cgroup; a hybrid v1/v2
/// host: the unified hierarchy, e.g. /sys/fs/cgroup/unified). Created as a child of our own v2 cgroup, so the
/// command stays under whatever limits the CI job's cgroup sets (our cgroup holds processes, hence enables no
/// controllers for its children: a child cgroup is always allowed). The kernel's filter compares the writer's v2
/// cgroup id (the inode number of this directory) with the ones diffkeeperd tracks.
/// </summary>
internal sealed class CommandCgroup
{
    public string Path { get; }
    public string ParentPath { get; }
    public ulong Id { get; }

    private CommandCgroup(string path, string parent, ulong id) { Path = path; ParentPath = parent; Id = id; }

    /// <summary>The cgroup2 mount point, or null when cgroup v2 is not mounted.</summary>
    public static string? FindMount() =>
        MountTable.Read().Where(m => m.FsType == "cgroup2" && m.Root == "/").Select(m => m.MountPoint).FirstOrDefault();

    /// <summary>Our own cgroup in the v2 hierarchy ("0::/path" in /proc/self/cgroup).</summary>
    private static string OwnPath()
    {
        foreach (var line in File.ReadLines("/proc/self/cgroup"))
            if (line.StartsWith("0::", StringComparison.Ordinal)) return line[3..];
        return "/";
    }

    /// <summary>Creates a new cgroup for one recorded command; throws IOException with what is missing.</summary>
    public static CommandCgroup Create(string name)
    {
        var mount = FindMount() ?? throw new IOException("cgroup v2 is not mounted (no cgroup2 file system in /proc/self/mountinfo): " +
            "a recorded command is told apart by its cgroup v2 id; mount it (mount -t cgroup2 none /sys/fs/cgroup/unified)");
        var parent = System.IO.Path.Join(mount, OwnPath().TrimEnd('/'));
        var path = System.IO.Path.Join(parent, name);
        try { Directory.CreateDirectory(path); }
        catch (UnauthorizedAccessException) { throw new IOException($"cannot create the cgroup {path}: permission denied (record needs root)"); }
        var z = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        if (!StatInfo.TryLstat(-100, z, out var st, out int errno))
            throw new IOException($"cannot stat the cgroup {path}: errno {errno}");
        return new CommandCgroup(path, parent, st.Inode);
    }

    /// <summary>Moves process <paramref name="pid"/> (all its threads) into this cgroup.</summary>
    public void Enter(int pid) => File.WriteAllText(System.IO.Path.Join(Path, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Moves process <paramref name="pid"/> back into the parent cgroup.</summary>
    public void Leave(int pid) => File.WriteAllText(System.IO.Path.Join(ParentPath, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Processes still in the cgroup.</summary>
    public List<(int Pid, string Comm)> Members() => CgroupMembers.Of(Path);

    /// <summary>Moves what is left (a daemonised child and whatever it starts) to the parent cgroup and removes this
    /// one. cgroup v2 moves one process per write, and a process still here can fork while the others are moved: its
    /// child starts here, after the list was read. So the moving repeats until the cgroup is empty (a pass leaves only
    /// what was forked during it), then the cgroup is removed. Never throws: returns null when the cgroup is gone,
    /// else why it is not (the command's exit status and the private daemon's stop must not depend on it).</summary>
    public string? Remove()
    {
        var timeout = TimeSpan.FromSeconds(10);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = Members();
            int moved = 0;
            foreach (var (pid, _) in left)
            {
                try { Leave(pid); moved++; }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // exited meanwhile
            }
            if (left.Count == 0)
            {
                try { Directory.Delete(Path); return null; }
                catch (DirectoryNotFoundException) { return null; }
                catch (UnauthorizedAccessException e) { return e.Message; }
                catch (IOException e) when (DateTime.UtcNow >= deadline) { return e.Message; }
                catch (IOException) { } // EBUSY: a process is still leaving (exiting)
            }
            else if (DateTime.UtcNow >= deadline)
                return $"{left.Count} process(es) still in it after {timeout.TotalSeconds:0} s of moving them out ({string.Join(", ", left.Take(5).Select(m => $"{m.Pid} {m.Comm}"))})";
            if (moved == 0) Thread.Sleep(10);
        }
    }
}
