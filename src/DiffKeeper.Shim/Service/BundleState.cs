using DiffKeeper.Shim.Runc;

namespace DiffKeeper.Shim.Service;

/// <summary>
/// What the <c>delete</c> subcommand needs but cannot learn from its arguments (it gets no Create request):
/// the runc binary and root, and the overlay upperdir for the recorder. Saved in the bundle at Create as
/// <c>diffkeeper-shim.state</c>, one <c>key=value</c> per line.
/// </summary>
internal sealed record BundleState(string RuncBinary, string RuncRoot, bool SystemdCgroup, string? UpperDir)
{
    public const string FileName = "diffkeeper-shim.state";

    public void Save(string bundle)
    {
        var path = Path.Combine(bundle, FileName);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp,
            $"runc_binary={RuncBinary}\nrunc_root={RuncRoot}\nsystemd_cgroup={(SystemdCgroup ? "true" : "false")}\nupperdir={UpperDir}\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The saved state, or containerd's defaults for this namespace when nothing was saved.</summary>
    public static BundleState Load(string bundle, string ns)
    {
        var state = new BundleState("runc", Path.Combine(RuncSettings.DefaultRoot, ns), false, null);
        var path = Path.Combine(bundle, FileName);
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
                _ => state,
            };
        }
        return state;
    }
}
