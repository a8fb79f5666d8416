using System.Net.Sockets;
using DiffKeeper.Cli.Containerd.Api;
using DiffKeeper.Store;
using Grpc.Core;
using Grpc.Net.Client;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// containerd's gRPC API over its unix socket, found as ctr and nerdctl find it: --address / CONTAINERD_ADDRESS
/// (default /run/containerd/containerd.sock), --namespace / CONTAINERD_NAMESPACE (else the given default). Every
/// call carries the namespace in the "containerd-namespace" header, which is how containerd scopes requests.
/// </summary>
public sealed class ContainerdClient : IDisposable
{
    public const string DefaultAddress = "/run/containerd/containerd.sock";
    private readonly GrpcChannel _channel;
    private readonly Metadata _headers;
    public string Address { get; }
    public string Namespace { get; }

    private ContainerdClient(string address, string ns)
    {
        Address = address;
        Namespace = ns;
        _headers = new Metadata { { "containerd-namespace", ns } };
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(address), ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch { socket.Dispose(); throw; }
            },
        };
        // The authority is not used over a unix socket; h2c (no TLS) is what containerd's socket speaks.
        _channel = GrpcChannel.ForAddress("http://containerd", new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 16 << 20 });
        Invoker = new BytesCallInvoker(_channel.CreateCallInvoker());
    }

    /// <summary>What every client of containerd's services is made on (see <see cref="BytesCallInvoker"/> for why).</summary>
    public CallInvoker Invoker { get; }

    public static string ResolveAddress(string? flag) =>
        flag ?? (Environment.GetEnvironmentVariable("CONTAINERD_ADDRESS") is { Length: > 0 } env ? env : DefaultAddress);

    public static string ResolveNamespace(string? flag, string? fallback) =>
        flag ?? (Environment.GetEnvironmentVariable("CONTAINERD_NAMESPACE") is { Length: > 0 } env ? env : fallback ?? "default");

    /// <summary>Null when nothing listens at the address (so a caller can say so plainly).</summary>
    public static ContainerdClient? TryConnect(string address, string ns)
    {
        if (!File.Exists(address) && !Directory.Exists(address)) return null;
        return new ContainerdClient(address, ns);
    }

    private CallOptions Call(CancellationToken ct = default) => new(_headers, DateTime.UtcNow.AddMinutes(5), ct);


    /// <summary>
    /// Call options for work under a lease: everything created with the "containerd-lease" header (content,
    /// snapshots) is kept from garbage collection until the lease goes, and goes with it.
    /// </summary>
    public CallOptions Options(string? lease = null, TimeSpan? deadline = null)
    {
        var h = new Metadata { { "containerd-namespace", Namespace } };
        if (lease is not null) h.Add("containerd-lease", lease);
        return new CallOptions(h, deadline is { } d ? DateTime.UtcNow + d : null);
    }

    /// <summary>A blob small enough to hold (a manifest, an index, a config).</summary>
    public byte[] ReadSmallBlob(string digest)
    {
        var ms = new MemoryStream();
        ReadBlob(digest, ms);
        return ms.ToArray();
    }

    /// <summary>A call whose failure becomes our error saying what we were doing.</summary>
    public static T Rpc<T>(string what, Func<T> call)
    {
        try { return call(); }
        catch (RpcException e) { throw Explain(e, what); }
    }

    public static Exception Explain(RpcException e, string what) => e.StatusCode switch
    {
        StatusCode.NotFound => new NotFoundException($"containerd: {what}: {e.Status.Detail}"),
        _ => new IOException($"containerd: {what}: {e.Status.StatusCode}: {e.Status.Detail}"),
    };

    /// <summary>The image's target descriptor (an index or a manifest).</summary>
    public ContentDescriptor GetImageTarget(string name)
    {
        try
        {
            var r = new Images.ImagesClient(Invoker).Get(new GetImageRequest { Name = name }, Call());
            return r.Image?.Target ?? throw new NotFoundException($"containerd {Address} (namespace {Namespace}): image {name} has no target");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new NotFoundException($"containerd {Address} (namespace {Namespace}): no image {name}");
        }
        catch (RpcException e) { throw Failed(e); }
    }

    /// <summary>Copies a blob from the content store into <paramref name="output"/>.</summary>
    public void ReadBlob(string digest, Stream output)
    {
        try
        {
            using var call = new Content.ContentClient(Invoker).Read(new ReadContentRequest { Digest = digest }, Call());
            var stream = call.ResponseStream;
            while (stream.MoveNext(CancellationToken.None).GetAwaiter().GetResult())
                stream.Current.Data.Span.CopyTo(output);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new NotFoundException($"containerd {Address} (namespace {Namespace}): blob {digest} is not in the content store");
        }
        catch (RpcException e) { throw Failed(e); }
    }

    private Exception Failed(RpcException e) => new IOException($"containerd {Address}: {e.Status.StatusCode}: {e.Status.Detail}");

    public void Dispose() => _channel.Dispose();

    /// <summary>
    /// Makes each of <paramref name="calls"/> once on a channel that cannot connect (nothing is sent anywhere; each
    /// fails at once), so that what the runtime builds on a process's first call of each kind is built here, on the
    /// calling thread. Why: in this Native AOT binary the first call of a request/response pair builds its generic
    /// gRPC machinery at run time (~2 ms of CPU each, measured with perf in the runtime's type loader); replay makes
    /// eight kinds of call, several on its critical path, and builds them on an idle core while the store opens.
    /// </summary>
    public static void WarmUp(params Action<CallInvoker, CallOptions>[] calls)
    {
        using var nowhere = GrpcChannel.ForAddress("http://nowhere", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { ConnectCallback = (_, _) => throw new IOException("not connected (warm-up)") },
        });
        var invoker = new BytesCallInvoker(nowhere.CreateCallInvoker());
        foreach (var call in calls)
        {
            try { call(invoker, new CallOptions()); }
            // The expected end is an RpcException (Unavailable); whatever else ends it, a warm-up must never fail
            // (it runs on a thread of its own, where an escaping exception would end the process).
            catch (Exception) { }
        }
    }
}

internal static class SpanStreamExtensions
{
    public static void CopyTo(this ReadOnlySpan<byte> data, Stream s) => s.Write(data);
}
