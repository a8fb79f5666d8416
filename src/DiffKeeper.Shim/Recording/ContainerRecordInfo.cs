namespace DiffKeeper.Shim.Recording;

/// <summary>What the recorder needs to find a container's changes: names, bundle, rootfs and its overlay upperdir.</summary>
public sealed record ContainerRecordInfo(
    string Namespace,
    string Id,
    string Bundle,
    string RootfsPath,
    string? UpperDir,
    int Pid);
