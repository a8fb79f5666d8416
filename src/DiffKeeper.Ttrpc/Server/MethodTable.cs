using System.Collections.Concurrent;
using Google.Protobuf;

namespace DiffKeeper.Ttrpc.Server;

/// <summary>
/// A registered method with its message types erased: decode the payload, run the handler, hand back the result.
/// </summary>
internal delegate ValueTask<IMessage?> MethodInvoker(ByteString payload, TtrpcCallContext context);

/// <summary>The server's routing table from (service, method) to handler.</summary>
internal sealed class MethodTable
{
    private readonly ConcurrentDictionary<(string Service, string Method), MethodInvoker> _methods = new();

    public void Add<TReq, TResp>(string service, string method, MessageParser<TReq> parser,
        Func<TReq, TtrpcCallContext, ValueTask<TResp>> handler)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        MethodInvoker invoker = (payload, context) =>
        {
            TReq request;
            try
            {
                request = parser.ParseFrom(payload.Span);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new TtrpcException(TtrpcStatusCode.InvalidArgument, $"unmarshal request error: {e.Message}");
            }
            var pending = handler(request, context);
            // Most shim handlers finish synchronously; don't pay for a state machine then.
            return pending.IsCompletedSuccessfully ? new ValueTask<IMessage?>(pending.Result) : AwaitResult(pending);
        };
        if (!_methods.TryAdd((service, method), invoker))
            throw new InvalidOperationException($"{service}/{method} is already registered");
    }

    /// <summary>The handler, or a TtrpcException(Unimplemented) naming what is missing, as containerd's ttrpc does.</summary>
    public MethodInvoker Find(string service, string method)
    {
        if (_methods.TryGetValue((service, method), out var invoker)) return invoker;
        bool serviceKnown = _methods.Keys.Any(k => k.Service == service);
        throw new TtrpcException(TtrpcStatusCode.Unimplemented,
            serviceKnown ? $"method {method} of service {service} not implemented" : $"service {service} not implemented");
    }

    private static async ValueTask<IMessage?> AwaitResult<TResp>(ValueTask<TResp> pending) where TResp : IMessage<TResp> =>
        await pending.ConfigureAwait(false);
}
