namespace DiffKeeper.Ttrpc.Framing;

/// <summary>The 10-byte header in front of every ttrpc frame.</summary>
/// <param name="Length">Payload length in bytes (header excluded).</param>
/// <param name="StreamId">Odd for client-initiated calls; a response reuses its request's id.</param>
/// <param name="Type">Request, Response or Data.</param>
/// <param name="Flags">0 for unary calls; streaming flags otherwise.</param>
public readonly record struct TtrpcFrameHeader(uint Length, uint StreamId, TtrpcMessageType Type, byte Flags = 0)
{
    /// <summary>True for the frame types ttrpc defines. Anything else means the peer is not speaking ttrpc.</summary>
    public bool HasKnownType => Type is TtrpcMessageType.Request or TtrpcMessageType.Response or TtrpcMessageType.Data;
}
