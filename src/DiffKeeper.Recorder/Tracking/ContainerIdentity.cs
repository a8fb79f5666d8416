using System.Text;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Recorder.Tracking;

/// <summary>Builds a recording's identity from what the shim knows about the container.</summary>
internal static class ContainerIdentity
{
    public const string RecordAnnotation = "io.diffkeeper/record", KeepAnnotation = "io.diffkeeper/keep";
    /// <summary>Recording label holding the frame (time resolution) the recording was made with, e.g. "100ms".</summary>
    public const string ResolutionLabel = "diffkeeper.io/resolution";
    /// <summary>Recording label saying how changes were captured: "ebpf", "exit-only" (no live capture).</summary>
    public const string CaptureLabel = "diffkeeper.io/capture";

    private static readonly string HostName = ReadHost();
    private static readonly string KernelRelease = ReadKernel();

    public static bool RecordingDisabled(ContainerInfo c) =>
        c.Annotations.TryGetValue(RecordAnnotation, out var v) && v.Trim().Equals("false", StringComparison.OrdinalIgnoreCase);

    public static RecordingInfo NewRecording(ContainerInfo c, long createdAt)
    {
        var a = c.Annotations;
        var info = new RecordingInfo
        {
            Namespace = c.Namespace,
            ContainerId = c.Id,
            // CRI: the container name within its pod reads better than a 64-hex id.
            Name = a.TryGetValue("io.kubernetes.cri.container-name", out var cn) && cn.Length > 0
                ? (a.TryGetValue("io.kubernetes.cri.sandbox-name", out var pod) && pod.Length > 0 ? pod + "/" + cn : cn)
                : c.Id,
            Image = a.GetValueOrDefault("io.kubernetes.cri.image-name") is { Length: > 0 } img ? img : null,
            Host = HostName,
            Kernel = KernelRelease,
            Start = createdAt,
        };
        // Labels of the recording: the container's annotations (CRI names, io.diffkeeper/* controls …).
        foreach (var (k, v) in a) info.Labels[k] = v;
        if (a.TryGetValue("io.kubernetes.cri.sandbox-namespace", out var podNs)) info.Labels["io.kubernetes.pod.namespace"] = podNs;
        return info;
    }

    /// <summary>
    /// The create event's detail: what identifies the container's process (args, cwd, user, env names — never env
    /// values, which may hold secrets) and its rootfs. One line per fact, stable "key: value" form.
    /// </summary>
    public static string Describe(ContainerInfo c)
    {
        var sb = new StringBuilder();
        if (c.Process is { } p)
        {
            sb.Append("args: ").Append(string.Join(' ', p.Args.Select(Quote))).Append('\n');
            sb.Append("cwd: ").Append(p.Cwd).Append('\n');
            sb.Append("user: ").Append(p.Uid).Append(':').Append(p.Gid).Append('\n');
            sb.Append("env: ").Append(string.Join(' ', p.EnvNames)).Append('\n');
            if (p.Terminal) sb.Append("terminal: true\n");
        }
        if (c.InitPid > 0) sb.Append("init pid: ").Append(c.InitPid).Append('\n');
        sb.Append("rootfs: ").Append(c.RootfsType.Length > 0 ? c.RootfsType : "unknown");
        if (c.UpperDir.Length > 0) sb.Append(" (upper ").Append(c.UpperDir).Append(')');
        if (c.CgroupPath.Length > 0) sb.Append("\ncgroup: ").Append(c.CgroupPath);
        return sb.ToString();
    }

    internal static string Quote(string s) =>
        s.Length > 0 && s.All(ch => char.IsLetterOrDigit(ch) || "-_./=:,+@%".Contains(ch)) ? s : "'" + s.Replace("'", "'\\''") + "'";

    private static string ReadHost()
    {
        try { return File.ReadAllText("/proc/sys/kernel/hostname").Trim(); } catch (IOException) { return Environment.MachineName; }
    }

    private static string ReadKernel()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); } catch (IOException) { return "unknown"; }
    }
}
