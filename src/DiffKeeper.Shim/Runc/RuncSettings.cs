namespace DiffKeeper.Shim.Runc;

/// <summary>How to invoke runc for one container: binary, state root and its JSON log in the bundle.</summary>
internal sealed record RuncSettings(string Binary, string Root, string LogPath, bool SystemdCgroup)
{
    public const string DefaultRoot = "/run/containerd/runc";

    /// <summary>containerd's layout: the runc root is per namespace.</summary>
    public static RuncSettings For(string bundle, string ns, string? binary, string? root, bool systemdCgroup) =>
        new(string.IsNullOrEmpty(binary) ? "runc" : binary,
            Path.Combine(string.IsNullOrEmpty(root) ? DefaultRoot : root, ns),
            Path.Combine(bundle, "log.json"), systemdCgroup);
}
