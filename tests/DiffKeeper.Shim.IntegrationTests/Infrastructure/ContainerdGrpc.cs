using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using DiffKeeper.Shim.IntegrationTests.Wire;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>
/// The few containerd gRPC calls `ctr` cannot make for a non-runc runtime: creating a task with *task* options of
/// our choosing (`ctr` sends runc Options only to io.containerd.runc.v2, and only BinaryName/SystemdCgroup/Root).
/// This is what containerd's Go client does for `NewTask(..., WithRuntimeOptions)`, and what the kubelet's CRI
/// path ends up doing. Plain HTTP/2 (h2c) over containerd's unix socket with the independent protobuf writer of
/// Wire/: no generated code shared with the product.
/// </summary>
public sealed class ContainerdGrpc : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _namespace;

    public ContainerdGrpc(string socketPath, string ns)
    {
        _namespace = ns;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://containerd"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>The rootfs mounts of a container's snapshot (what the Go client reads before creating a task).</summary>
    public async Task<List<byte[]>> SnapshotMountsAsync(string key, string snapshotter = "overlayfs")
    {
        var reply = await CallAsync("containerd.services.snapshots.v1.Snapshots", "Mounts",
            new ProtoWriter().String(1, snapshotter).String(2, key).ToArray());
        return ProtoReader.Parse(reply).Where(f => f.Number == 1).Select(f => f.Bytes.ToArray()).ToList();
    }

    /// <summary>Tasks.Create with task options <paramref name="optionsTypeUrl"/>/<paramref name="optionsValue"/> (none when null).</summary>
    public async Task<int> CreateTaskAsync(string containerId, IEnumerable<byte[]> rootfs, string? optionsTypeUrl, byte[]? optionsValue,
        string stdout = "", string stderr = "")
    {
        var request = new ProtoWriter().String(1, containerId);
        foreach (var mount in rootfs) request.Bytes(3, mount);
        if (stdout.Length > 0) request.String(5, stdout);
        if (stderr.Length > 0) request.String(6, stderr);
        if (optionsTypeUrl != null)
            request.Message(9, new ProtoWriter().String(1, optionsTypeUrl).Bytes(2, optionsValue ?? []));
        var reply = await CallAsync("containerd.services.tasks.v1.Tasks", "Create", request.ToArray());
        return (int)(ProtoReader.Parse(reply).First(2)?.Varint ?? 0);
    }

    public async Task<int> StartTaskAsync(string containerId)
    {
        var reply = await CallAsync("containerd.services.tasks.v1.Tasks", "Start", new ProtoWriter().String(1, containerId).ToArray());
        return (int)(ProtoReader.Parse(reply).First(1)?.Varint ?? 0);
    }

    /// <summary>One unary call; the reply message, or <see cref="ContainerdGrpcException"/> for a non-OK status.</summary>
    public async Task<byte[]> CallAsync(string service, string method, byte[] message)
    {
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/{service}/{method}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation("containerd-namespace", _namespace);
        using var response = await _http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        var status = Header(response, "grpc-status");
        if (status != null && status != "0")
            throw new ContainerdGrpcException(int.Parse(status), Uri.UnescapeDataString(Header(response, "grpc-message") ?? ""));
        if (body.Length < 5) return [];
        var length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1));
        return body.AsSpan(5, length).ToArray();
    }

    /// <summary>gRPC puts the status in the trailers, or in the headers of a trailers-only reply.</summary>
    private static string? Header(HttpResponseMessage response, string name) =>
        response.TrailingHeaders.TryGetValues(name, out var t) ? t.FirstOrDefault()
        : response.Headers.TryGetValues(name, out var h) ? h.FirstOrDefault() : null;

    public void Dispose() => _http.Dispose();
}

/// <summary>A failed gRPC call: the status code and containerd's message (what `ctr` would print).</summary>
public sealed class ContainerdGrpcException(int code, string message) : Exception($"grpc status {code}: {message}")
{
    public int Code { get; } = code;
    public string Detail { get; } = message;
}
