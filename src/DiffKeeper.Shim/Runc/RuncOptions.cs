using DiffKeeper.Shim.Events;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using RuncProto = DiffKeeper.Shim.Protos.Runc.Options;
using RuntimeOptionsProto = DiffKeeper.Shim.Protos.RuntimeOptions.Options;

namespace DiffKeeper.Shim.Runc;

/// <summary>
/// The runc shim's options (<c>containerd.runc.v1.Options</c>), whichever form they arrived in:
/// <list type="bullet">
/// <item>the runc options message itself (what containerd's Go client and CRI send to runc runtimes);</item>
/// <item><c>runtimeoptions.v1.Options</c> (what <c>ctr --runtime-config-path</c> and CRI send to any other runtime,
/// i.e. to us): a TOML document, from the file at <c>ConfigPath</c> or inline in <c>ConfigBody</c>, whose keys are
/// the same option names (<c>SystemdCgroup = true</c>, <c>BinaryName = "/usr/bin/runc"</c>…).</item>
/// </list>
/// Unknown message types and unknown TOML keys are ignored (CRI's inline body also carries its own keys such as
/// <c>TypeUrl</c>); a known key with a value of the wrong type, an unreadable config file or invalid TOML is an error,
/// so a typo'd node config fails loudly instead of running containers without the options it asked for.
/// </summary>
internal sealed record RuncOptions
{
    public bool NoPivotRoot { get; init; }
    public bool NoNewKeyring { get; init; }
    public string ShimCgroup { get; init; } = "";
    public uint IoUid { get; init; }
    public uint IoGid { get; init; }
    public string BinaryName { get; init; } = "";
    public string Root { get; init; } = "";
    public string CriuPath { get; init; } = "";
    public bool SystemdCgroup { get; init; }
    public string CriuImagePath { get; init; } = "";
    public string CriuWorkPath { get; init; } = "";

    public static readonly RuncOptions None = new();

    public static string RuncTypeName => RuncProto.Descriptor.FullName;
    public static string RuntimeOptionsTypeName => RuntimeOptionsProto.Descriptor.FullName;

    /// <summary>
    /// The options in <paramref name="any"/>: <see cref="None"/> for null, an empty Any or a type we do not know.
    /// Throws <see cref="InvalidRuntimeOptionsException"/> for options that are present but unusable.
    /// </summary>
    public static RuncOptions FromAny(Any? any)
    {
        if (any == null || (any.TypeUrl.Length == 0 && any.Value.IsEmpty)) return None;
        try
        {
            if (TypeUrls.Is(any, RuncTypeName)) return FromProto(RuncProto.Parser.ParseFrom(any.Value));
            if (TypeUrls.Is(any, RuntimeOptionsTypeName)) return FromRuntimeOptions(RuntimeOptionsProto.Parser.ParseFrom(any.Value));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidRuntimeOptionsException($"cannot decode {any.TypeUrl}: {e.Message}");
        }
        return None;
    }

    /// <summary>True when <paramref name="any"/> is a type this shim reads options from.</summary>
    public static bool IsKnownType(Any any) => TypeUrls.Is(any, RuncTypeName) || TypeUrls.Is(any, RuntimeOptionsTypeName);

    public static RuncOptions FromProto(RuncProto o) => new()
    {
        NoPivotRoot = o.NoPivotRoot, NoNewKeyring = o.NoNewKeyring, ShimCgroup = o.ShimCgroup, IoUid = o.IoUid,
        IoGid = o.IoGid, BinaryName = o.BinaryName, Root = o.Root, CriuPath = o.CriuPath, SystemdCgroup = o.SystemdCgroup,
        CriuImagePath = o.CriuImagePath, CriuWorkPath = o.CriuWorkPath,
    };

    /// <summary>
    /// <c>ConfigPath</c> wins over <c>ConfigBody</c>, as containerd documents it (CRI sends the body only when the
    /// table sets no path). Neither: no options.
    /// </summary>
    public static RuncOptions FromRuntimeOptions(RuntimeOptionsProto o)
    {
        if (o.ConfigPath.Length > 0)
        {
            // The start process runs in the bundle and the server in "/": a relative path would mean two files.
            if (!Path.IsPathRooted(o.ConfigPath))
                throw new InvalidRuntimeOptionsException($"runtime config path {o.ConfigPath} is not absolute");
            string text;
            try { text = File.ReadAllText(o.ConfigPath); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidRuntimeOptionsException($"failed to read runtime config file {o.ConfigPath}: {e.Message}");
            }
            return RuncOptionsToml.Parse(text, o.ConfigPath);
        }
        if (!o.ConfigBody.IsEmpty) return RuncOptionsToml.Parse(o.ConfigBody.ToStringUtf8(), "runtime options ConfigBody");
        return None;
    }
}

/// <summary>Options were sent but cannot be used; the message says what and where.</summary>
internal sealed class InvalidRuntimeOptionsException(string message) : Exception("invalid runtime options: " + message);
