using System.Globalization;

namespace DiffKeeper.Common.Cgroups;

/// <summary>The processes in a cgroup (v2) directory: what `diffkeeper record` moves out of its command's cgroup
/// and what diffkeeperd names when it ends a recording whose `record` is gone.</summary>
public static class CgroupMembers
{
    /// <summary>The processes listed in <paramref name="cgroupDir"/>/cgroup.procs with their comm ("?" for one that
    /// exited meanwhile); empty when the cgroup is gone.</summary>
    public static List<(int Pid, string Comm)> Of(string cgroupDir)
    {
        var list = new List<(int, string)>();
        try
        {
            foreach (var line in File.ReadLines(Path.Join(cgroupDir, "cgroup.procs")))
            {
                if (!int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
                string comm;
                try { comm = File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'); }
                catch (IOException) { comm = "?"; }
                list.Add((pid, comm));
            }
        }
        catch (IOException) { }
        return list;
    }
}
