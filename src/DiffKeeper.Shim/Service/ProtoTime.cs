using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Shim.Service;

/// <summary>Timestamps as containerd's Go side encodes them: an unset time is Go's zero time (year 1), not absent.</summary>
internal static class ProtoTime
{
    private static readonly Timestamp GoZero = Timestamp.FromDateTime(DateTime.SpecifyKind(DateTime.MinValue, DateTimeKind.Utc));

    public static Timestamp From(DateTime? time) => time.HasValue ? Timestamp.FromDateTime(time.Value) : GoZero.Clone();
}
