using System.Buffers;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc.Framing;

/// <summary>
/// Builds outgoing frames straight into pooled buffers. The method's message is written in place as the
/// envelope's payload field instead of being copied through a ByteString first: protobuf decoders accept fields
/// in any order, so "envelope without payload" followed by "payload field" is a valid Request/Response.
/// </summary>
internal static class Envelope
{
    private const int RequestPayloadField = 3;   // ttrpc.Request.payload
    private const int ResponsePayloadField = 2;  // ttrpc.Response.payload

    public static Request NewRequest(string service, string method, TimeSpan? timeout,
        IEnumerable<KeyValuePair<string, string>>? metadata)
    {
        var request = new Request { Service = service, Method = method };
        if (timeout is { } t) request.TimeoutNano = ToNanoseconds(t);
        if (metadata is not null)
            foreach (var (key, value) in metadata) request.Metadata.Add(new KeyValue { Key = key, Value = value });
        return request;
    }

    /// <summary>At least 1 ns: a timeout_nano of 0 would mean "no deadline".</summary>
    private static long ToNanoseconds(TimeSpan timeout) =>
        timeout.Ticks >= long.MaxValue / 100 ? long.MaxValue : Math.Max(1, timeout.Ticks * 100);

    public static PooledFrame EncodeRequest(uint streamId, Request envelopeWithoutPayload, IMessage payload, int maxMessageSize) =>
        Encode(streamId, TtrpcMessageType.Request, envelopeWithoutPayload, RequestPayloadField, payload, maxMessageSize);

    /// <summary>A successful response: no status, the result as payload (an Empty result makes a zero-length frame).</summary>
    public static PooledFrame EncodeSuccess(uint streamId, IMessage? result, int maxMessageSize) =>
        Encode(streamId, TtrpcMessageType.Response, null, ResponsePayloadField, result, maxMessageSize);

    public static PooledFrame EncodeError(uint streamId, TtrpcStatusCode code, string message)
    {
        var response = new Response { Status = new Status { Code = (int)code, Message = message } };
        // An error frame is small; never refuse to send it for size.
        return Encode(streamId, TtrpcMessageType.Response, response, ResponsePayloadField, null, int.MaxValue);
    }

    private static PooledFrame Encode(uint streamId, TtrpcMessageType type, IMessage? envelope, int payloadField,
        IMessage? payload, int maxMessageSize)
    {
        int envelopeSize = envelope?.CalculateSize() ?? 0;
        int payloadSize = payload?.CalculateSize() ?? 0;
        // proto3 leaves an empty bytes field out entirely.
        int payloadFieldSize = payloadSize == 0 ? 0 : 1 + CodedOutputStream.ComputeLengthSize(payloadSize) + payloadSize;
        long total = (long)envelopeSize + payloadFieldSize;
        if (total > maxMessageSize)
            throw new TtrpcException(TtrpcStatusCode.ResourceExhausted,
                $"message length {total} exceeds maximum message size of {maxMessageSize}");

        int frameLength = TtrpcFrame.HeaderSize + (int)total;
        var buffer = ArrayPool<byte>.Shared.Rent(frameLength);
        try
        {
            var span = buffer.AsSpan(0, frameLength);
            TtrpcFrame.WriteHeader(span, new TtrpcFrameHeader((uint)total, streamId, type));
            var body = span[TtrpcFrame.HeaderSize..];
            if (envelopeSize > 0) envelope!.WriteTo(body[..envelopeSize]);
            body = body[envelopeSize..];
            if (payloadSize > 0)
            {
                body[0] = (byte)((payloadField << 3) | 2); // wire type 2: length-delimited
                int lengthBytes = WriteVarint(body[1..], (uint)payloadSize);
                payload!.WriteTo(body.Slice(1 + lengthBytes, payloadSize));
            }
            return new PooledFrame(buffer, frameLength);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static int WriteVarint(Span<byte> destination, uint value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }
}

/// <summary>An encoded frame in a rented buffer; Dispose returns the buffer to the pool.</summary>
internal readonly struct PooledFrame(byte[] buffer, int length) : IDisposable
{
    public ReadOnlyMemory<byte> Memory => buffer.AsMemory(0, length);

    public void Dispose() => ArrayPool<byte>.Shared.Return(buffer);
}
