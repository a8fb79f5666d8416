using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Events;

/// <summary>
/// Packs messages into Any with the bare type URL containerd's typeurl package produces and expects
/// (<c>containerd.events.TaskExit</c>, not <c>type.googleapis.com/…</c>).
/// </summary>
internal static class TypeUrls
{
    public static Any PackBare(IMessage message) =>
        new() { TypeUrl = message.Descriptor.FullName, Value = message.ToByteString() };

    /// <summary>True when <paramref name="any"/> holds the message named <paramref name="fullName"/>, whatever the URL prefix.</summary>
    public static bool Is(Any? any, string fullName)
    {
        if (any == null) return false;
        var url = any.TypeUrl;
        int slash = url.LastIndexOf('/');
        return (slash < 0 ? url : url[(slash + 1)..]) == fullName;
    }
}
