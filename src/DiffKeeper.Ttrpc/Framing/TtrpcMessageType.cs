namespace DiffKeeper.Ttrpc.Framing;

/// <summary>Byte 8 of the frame header.</summary>
public enum TtrpcMessageType : byte
{
    Request = 1,
    Response = 2,
    /// <summary>Streaming data (ttrpc 1.2+). DiffKeeper does not stream; a server ignores these frames.</summary>
    Data = 3,
}
