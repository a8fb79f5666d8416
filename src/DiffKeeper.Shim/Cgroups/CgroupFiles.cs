namespace DiffKeeper.Shim.Cgroups;

/// <summary>Small readers for cgroup interface files; a missing file reads as zero / empty.</summary>
internal static class CgroupFiles
{
    public static ulong ReadUInt(string? dir, string file)
    {
        if (dir == null) return 0;
        try
        {
            var text = File.ReadAllText(Path.Combine(dir, file)).Trim();
            if (text == "max") return ulong.MaxValue;
            return ulong.TryParse(text, out var v) ? v : 0;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }

    /// <summary>Lines of "key value" (memory.stat, cpu.stat, memory.events, …).</summary>
    public static Dictionary<string, ulong> ReadKeyValues(string? dir, string file)
    {
        var values = new Dictionary<string, ulong>();
        foreach (var line in ReadLines(dir, file))
        {
            int space = line.IndexOf(' ');
            if (space <= 0) continue;
            if (ulong.TryParse(line.AsSpan(space + 1).Trim(), out var v)) values[line[..space]] = v;
        }
        return values;
    }

    public static string[] ReadLines(string? dir, string file)
    {
        if (dir == null) return [];
        try { return File.ReadAllLines(Path.Combine(dir, file)); }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    public static ulong Get(this Dictionary<string, ulong> values, string key) =>
        values.TryGetValue(key, out var v) ? v : 0;

    /// <summary>"/dev/sda" for "8:0", from sysfs; empty when unknown.</summary>
    public static string DeviceName(ulong major, ulong minor)
    {
        try
        {
            foreach (var line in File.ReadLines($"/sys/dev/block/{major}:{minor}/uevent"))
                if (line.StartsWith("DEVNAME=", StringComparison.Ordinal)) return "/dev/" + line["DEVNAME=".Length..];
        }
        catch (IOException) { }
        return "";
    }
}
