using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// Makes every unary and server-streaming call of the generated clients as a call of bytes: the message is
/// serialized here with the method's own marshaller, the channel carries byte[] both ways, and the answer is parsed
/// here. Why: in this Native AOT binary a generic virtual call (CallInvoker.BlockingUnaryCall&lt;TRequest, TResponse&gt;)
/// has its shared code's generic machinery built at run time by the runtime's type loader, once per request/response
/// pair, and behind Grpc.Net.Client's invoker that machinery is large (its call, its streams, their async state
/// machines): ~2–3 ms of CPU per pair (perf), and replay makes eight kinds of call before its task runs. Through
/// here the large part is built once, for byte[]; per pair only these small methods are. Client-streaming and duplex
/// calls (the fallback's Content.Write only) go to the channel as they are.
/// </summary>
internal sealed class BytesCallInvoker(CallInvoker channel) : CallInvoker
{
    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    private static Method<byte[], byte[]> AsBytes<TRequest, TResponse>(Method<TRequest, TResponse> m) =>
        new(m.Type, m.ServiceName, m.Name, Bytes, Bytes);

    private static byte[] Serialize<TRequest>(TRequest request) =>
        request is IMessage m ? m.ToByteArray() : throw new ArgumentException($"{typeof(TRequest)} is no protobuf message");

    private static Func<byte[], TResponse> Parser<TResponse>(Marshaller<TResponse> m) => bytes => m.ContextualDeserializer(new Payload(bytes));

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        Parser(method.ResponseMarshaller)(channel.BlockingUnaryCall(AsBytes(method), host, options, Serialize(request)));

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var call = channel.AsyncUnaryCall(AsBytes(method), host, options, Serialize(request));
        var parse = Parser(method.ResponseMarshaller);
        return new AsyncUnaryCall<TResponse>(call.ResponseAsync.ContinueWith(t => parse(t.GetAwaiter().GetResult()), TaskContinuationOptions.ExecuteSynchronously),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var call = channel.AsyncServerStreamingCall(AsBytes(method), host, options, Serialize(request));
        return new AsyncServerStreamingCall<TResponse>(new Parsed<TResponse>(call.ResponseStream, Parser(method.ResponseMarshaller)),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        channel.AsyncClientStreamingCall(method, host, options);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        channel.AsyncDuplexStreamingCall(method, host, options);

    /// <summary>A received message's bytes, as the generated deserializers read them.</summary>
    private sealed class Payload(byte[] bytes) : DeserializationContext
    {
        public override int PayloadLength => bytes.Length;
        public override byte[] PayloadAsNewBuffer() => (byte[])bytes.Clone();
        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(bytes);
    }

    /// <summary>A stream of byte[] messages read as parsed ones.</summary>
    private sealed class Parsed<T>(IAsyncStreamReader<byte[]> bytes, Func<byte[], T> parse) : IAsyncStreamReader<T>
    {
        public T Current { get; private set; } = default!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await bytes.MoveNext(cancellationToken).ConfigureAwait(false)) return false;
            Current = parse(bytes.Current);
            return true;
        }
    }
}
