using DiffKeeper.Common.Hashing;
using System.Text;
using DiffKeeper.Shim.Service;

namespace DiffKeeper.Shim.Cli;

/// <summary>
/// The shim socket address containerd expects: <c>unix:///run/containerd/s/&lt;sha256("&lt;address&gt;/&lt;ns&gt;/&lt;group&gt;")&gt;</c>,
/// where the group is the container id unless the spec groups containers (runc's annotations).
/// </summary>
internal static class ShimAddress
{
    public const string SocketDirectory = "/run/containerd/s";
    private static readonly string[] GroupAnnotations = ["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"];

    public static string GroupId(string id, OciSpec spec)
    {
        foreach (var key in GroupAnnotations)
            if (spec.Annotations.TryGetValue(key, out var group) && group.Length > 0) return group;
        return id;
    }

    public static string For(string containerdAddress, string ns, string groupId)
    {
        var hash = Sha256.Hash(Encoding.UTF8.GetBytes($"{containerdAddress}/{ns}/{groupId}"));
        return "unix://" + Path.Combine(SocketDirectory, Convert.ToHexStringLower(hash));
    }

    public static string SocketPath(string address) =>
        address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
}
