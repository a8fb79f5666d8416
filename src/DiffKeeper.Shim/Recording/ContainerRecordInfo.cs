using DiffKeeper.Shim.Mounts;
using DiffKeeper.Shim.Service;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// What the recorder needs to find a container's changes: names, bundle, rootfs and its overlay upperdir; at Create
/// also the rest of the rootfs layout and the OCI spec; at the exit the time of the init's exit.
/// The <c>delete</c> subcommand knows only what the bundle state kept: Layout and Spec are null there.
/// </summary>
public sealed record ContainerRecordInfo(
    string Namespace,
    string Id,
    string Bundle,
    string RootfsPath,
    string? UpperDir,
    int Pid,
    RootfsLayout? Layout = null,
    OciSpec? Spec = null,
    DateTime? ExitedAt = null);
