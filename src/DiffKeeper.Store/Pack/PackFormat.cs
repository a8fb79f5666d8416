namespace DiffKeeper.Store.Pack;

/// <summary>
/// A packed recording (see docs/store.md):
///   header  16 bytes: magic "DKPACK\r\n", u32 LE format version, u32 LE flags (0)
///   records [u8 type][varint length][payload] …, types below, ending with an End record
///   footer  48 bytes: magic "DKPACKZ\n", u64 LE footer offset, SHA-256 of every byte before the footer
/// </summary>
internal static class PackFormat
{
    public static ReadOnlySpan<byte> HeaderMagic => "DKPACK\r\n"u8;
    public static ReadOnlySpan<byte> FooterMagic => "DKPACKZ\n"u8;
    public const uint Version = 1;
    public const int HeaderSize = 16, FooterSize = 48;

    public const byte End = 0, Recording = 1, FileVersion = 2, Event = 3, Chunk = 4;
}
