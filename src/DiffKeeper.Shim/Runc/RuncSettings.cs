namespace DiffKeeper.Shim.Runc;

/// <summary>
/// How to invoke runc for one container: binary, state root and its JSON log in the bundle, the cgroup driver,
/// criu, and who owns the stdio pipes the container gets (the options' IoUid/IoGid).
/// </summary>
public sealed record RuncSettings(string Binary, string Root, string LogPath, bool SystemdCgroup)
{
    public const string DefaultRoot = "/run/containerd/runc";

    /// <summary><c>--criu</c> for every runc call, as go-runc passes it (used by checkpoint/restore).</summary>
    public string CriuPath { get; init; } = "";

    /// <summary>Owner of the pipes runc gets as stdio (go-runc fchowns them; 0:0 unless the options say otherwise).</summary>
    public uint IoUid { get; init; }
    public uint IoGid { get; init; }

    /// <summary>containerd's layout: the runc root is per namespace.</summary>
    public static RuncSettings For(string bundle, string ns, string? binary, string? root, bool systemdCgroup) =>
        new(string.IsNullOrEmpty(binary) ? "runc" : binary,
            Path.Combine(string.IsNullOrEmpty(root) ? DefaultRoot : root, ns),
            new BundlePaths(bundle).RuncLog, systemdCgroup);

    internal static RuncSettings For(string bundle, string ns, RuncOptions options) =>
        For(bundle, ns, options.BinaryName, options.Root, options.SystemdCgroup) with
        {
            CriuPath = options.CriuPath, IoUid = options.IoUid, IoGid = options.IoGid,
        };
}
