namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// Reads processes and mounts from /proc. Shim processes are found by a marker only this test run's containerd
/// puts in their environment (TTRPC_ADDRESS under the run's temp dir) — never by process name.
/// </summary>
public static class ProcFs
{
    public static bool IsAlive(int pid)
    {
        var status = Status(pid);
        // A zombie is dead for our purposes: it runs nothing and holds no socket.
        return status != null && !status.Contains("State:\tZ");
    }

    public static string? Status(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/status"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    public static int? ParentPid(int pid) => StatusField(pid, "PPid") is { } v ? int.Parse(v) : null;

    public static string? StatusField(int pid, string field)
    {
        var status = Status(pid);
        if (status == null) return null;
        foreach (var line in status.Split('\n'))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return line[(field.Length + 1)..].Trim();
        return null;
    }

    public static IReadOnlyDictionary<string, string> Environment(int pid)
    {
        var result = new Dictionary<string, string>();
        byte[] raw;
        try { raw = File.ReadAllBytes($"/proc/{pid}/environ"); }
        catch (IOException) { return result; }
        catch (UnauthorizedAccessException) { return result; }
        foreach (var entry in System.Text.Encoding.UTF8.GetString(raw).Split('\0'))
        {
            var eq = entry.IndexOf('=');
            if (eq > 0) result[entry[..eq]] = entry[(eq + 1)..];
        }
        return result;
    }

    public static IReadOnlyList<string> CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries); }
        catch (IOException) { return Array.Empty<string>(); }
    }

    public static string? FdTarget(int pid, int fd)
    {
        try { return new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget; }
        catch (IOException) { return null; }
    }

    public static IEnumerable<int> AllPids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out var pid)) yield return pid;
    }

    /// <summary>Live processes whose TTRPC_ADDRESS starts with the given prefix (this run's temp root).</summary>
    public static List<int> ProcessesWithTtrpcAddressUnder(string prefix) =>
        AllPids().Where(pid => pid != System.Environment.ProcessId
                && Environment(pid).TryGetValue("TTRPC_ADDRESS", out var a) && a.StartsWith(prefix, StringComparison.Ordinal)
                && IsAlive(pid))
            .ToList();

    /// <summary>Mount points from /proc/self/mountinfo (field 5, octal escapes decoded).</summary>
    public static List<string> MountPoints()
    {
        var result = new List<string>();
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4) result.Add(DecodeOctal(fields[4]));
        }
        return result;
    }

    public static List<string> MountPointsUnder(string dir) =>
        MountPoints().Where(m => m == dir || m.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal)).ToList();

    private static string DecodeOctal(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 3 < s.Length)
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }
}
