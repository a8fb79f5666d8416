using DiffKeeper.TestSupport.Ttrpc;
using DiffKeeper.Ttrpc.Framing;
using DiffKeeper.Ttrpc.Protocol;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace DiffKeeper.Ttrpc.Tests.Framing;

public class TtrpcFrameTests
{
    [Fact]
    public void Header_is_big_endian_length_stream_type_flags()
    {
        var bytes = new byte[TtrpcFrame.HeaderSize];
        TtrpcFrame.WriteHeader(bytes, new TtrpcFrameHeader(0x00012345, 0x89ABCDEF, TtrpcMessageType.Response, 0x04));

        Assert.Equal(new byte[] { 0x00, 0x01, 0x23, 0x45, 0x89, 0xAB, 0xCD, 0xEF, 0x02, 0x04 }, bytes);
        Assert.Equal(new TtrpcFrameHeader(0x00012345, 0x89ABCDEF, TtrpcMessageType.Response, 0x04), TtrpcFrame.ReadHeader(bytes));
    }

    [Fact]
    public void TryDecode_needs_a_whole_frame()
    {
        var frame = TtrpcWire.Encode(7, TtrpcMessageType.Request, [1, 2, 3]);
        byte[] twoFrames = [.. frame, .. TtrpcWire.Encode(9, TtrpcMessageType.Request, [])];

        for (int cut = 0; cut < frame.Length; cut++)
        {
            Assert.False(TtrpcWire.TryDecode(frame.AsSpan(0, cut), out _, out _, out int none));
            Assert.Equal(0, none);
        }

        Assert.True(TtrpcWire.TryDecode(twoFrames, out var header, out var payload, out int consumed));
        Assert.Equal(new TtrpcFrameHeader(3, 7, TtrpcMessageType.Request), header);
        Assert.Equal(new byte[] { 1, 2, 3 }, payload.ToArray());
        Assert.Equal(13, consumed);

        Assert.True(TtrpcWire.TryDecode(twoFrames.AsSpan(consumed), out header, out payload, out consumed));
        Assert.Equal(new TtrpcFrameHeader(0, 9, TtrpcMessageType.Request), header);
        Assert.Equal(0, payload.Length);
        Assert.Equal(10, consumed);
    }

    [Fact]
    public void Unknown_type_bytes_are_flagged()
    {
        Assert.True(TtrpcFrame.ReadHeader([0, 0, 0, 0, 0, 0, 0, 1, 3, 0]).HasKnownType);
        Assert.False(TtrpcFrame.ReadHeader([0, 0, 0, 0, 0, 0, 0, 1, 0, 0]).HasKnownType);
        Assert.False(TtrpcFrame.ReadHeader("not ttrpc!"u8).HasKnownType);
    }

    [Fact]
    public void Empty_success_is_a_zero_length_frame()
    {
        using var frame = Envelope.EncodeSuccess(11, new Empty(), TtrpcFrame.DefaultMaxMessageSize);

        // What containerd's own shim sends for an Empty result.
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x02, 0x00 }, frame.Memory.ToArray());
    }

    [Fact]
    public void Request_written_in_place_decodes_as_a_normal_envelope()
    {
        var envelope = Envelope.NewRequest("svc", "M", TimeSpan.FromSeconds(2), [new("k", "v"), new("k", "w")]);
        var message = new StringValue { Value = new string('x', 300) }; // multi-byte length varint

        using var frame = Envelope.EncodeRequest(5, envelope, message, TtrpcFrame.DefaultMaxMessageSize);

        Assert.True(TtrpcWire.TryDecode(frame.Memory.Span, out var header, out var payload, out int consumed));
        Assert.Equal(frame.Memory.Length, consumed);
        Assert.Equal(5u, header.StreamId);
        Assert.Equal(TtrpcMessageType.Request, header.Type);
        var request = Request.Parser.ParseFrom(payload);
        Assert.Equal("svc", request.Service);
        Assert.Equal("M", request.Method);
        Assert.Equal(2_000_000_000L, request.TimeoutNano);
        Assert.Equal(["k=v", "k=w"], request.Metadata.Select(kv => $"{kv.Key}={kv.Value}"));
        Assert.Equal(message, StringValue.Parser.ParseFrom(request.Payload));
        // Field order differs from the generated encoder (payload last), the decoded message does not.
        envelope.Payload = message.ToByteString();
        Assert.Equal(envelope, request);
    }

    [Fact]
    public void Error_response_carries_code_and_message()
    {
        using var frame = Envelope.EncodeError(3, TtrpcStatusCode.NotFound, "process already finished");

        Assert.True(TtrpcWire.TryDecode(frame.Memory.Span, out var header, out var payload, out _));
        Assert.Equal(TtrpcMessageType.Response, header.Type);
        var response = TtrpcWire.DecodeResponse(payload);
        Assert.Equal(5, response.Status.Code);
        Assert.Equal("process already finished", response.Status.Message);
        Assert.True(response.Payload.IsEmpty);
    }

    [Fact]
    public void Oversized_message_is_refused_before_sending()
    {
        var big = new BytesValue { Value = ByteString.CopyFrom(new byte[TtrpcFrame.DefaultMaxMessageSize]) };

        var e = Assert.Throws<TtrpcException>(() => Envelope.EncodeSuccess(1, big, TtrpcFrame.DefaultMaxMessageSize).Dispose());
        Assert.Equal(TtrpcStatusCode.ResourceExhausted, e.Code);
    }
}
