namespace DiffKeeper.Shim;

/// <summary>
/// The files of one container's bundle directory the shim reads or writes, derived in one place for the serving
/// shim and its <c>delete</c> subcommand (which gets no Create request and must find the same files).
/// containerd writes <c>config.json</c>, <c>rootfs/</c> and the <c>log</c> FIFO; the shim writes the rest.
/// </summary>
internal sealed record BundlePaths(string Directory)
{
    /// <summary>The OCI runtime spec (containerd's).</summary>
    public string Config => Path.Combine(Directory, "config.json");

    /// <summary>Where the container's root filesystem is mounted (in Create, by the shim).</summary>
    public string Rootfs => Path.Combine(Directory, "rootfs");

    /// <summary>runc's <c>--pid-file</c> for the init process.</summary>
    public string InitPidFile => Path.Combine(Directory, "init.pid");

    /// <summary>runc's JSON log (<c>--log</c>); errors are read back from it.</summary>
    public string RuncLog => Path.Combine(Directory, "log.json");

    /// <summary>The shim's ttrpc address, for containerd after a restart (written by <c>start</c>).</summary>
    public string Address => Path.Combine(Directory, "address");

    /// <summary>What the <c>delete</c> subcommand needs from Create (see Service.BundleState).</summary>
    public string State => Path.Combine(Directory, "diffkeeper-shim.state");

    /// <summary>runc's <c>--pid-file</c> for an exec.</summary>
    public string ExecPidFile(string execId) => Path.Combine(Directory, execId + ".pid");

    /// <summary>The pid runc wrote to <paramref name="pidFile"/>, or null if the file is missing or holds no number.</summary>
    public static int? ReadPid(string pidFile)
    {
        try { return int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) ? pid : null; }
        catch (IOException) { return null; }
    }
}
