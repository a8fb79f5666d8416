using DiffKeeper.Cli.Containerd.Api;
using DiffKeeper.Cli.Export;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Query;
using Google.Protobuf;
using Grpc.Core;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// The state at T as a committed (read-only) snapshot on top of the image's chain. Fast path: the active
/// snapshot's overlay upper directory is filled directly, as `export --out` fills a directory (whiteouts as char
/// 0:0, opaque directories as trusted.overlay.opaque, never through a link), which is what the overlay snapshotter
/// itself would leave after unpacking. Any other snapshotter: the state as an OCI tar layer in the content store,
/// unpacked by containerd (Diff.Apply), which costs several times more (docs/cli.md, Measured).
/// </summary>
public sealed class StateLayer(ContainerdClient client, string snapshotter, RecordingStore store, ReplaySteps steps)
{
    public string Snapshotter => snapshotter;

    private readonly Snapshots.SnapshotsClient _snapshots = new(client.Invoker);

    /// <summary>How the state got into the snapshot (said with --verbose).</summary>
    public string How { get; private set; } = "";

    /// <summary>The name of the cached state snapshot of a moment over an image (the chain id is part of it: another image is another snapshot).</summary>
    public static string CacheName(string recording, long at, string chainId) =>
        $"diffkeeper-replay-cache-{recording}-{at}-{(chainId.Length > 19 ? chainId[7..19] : "base")}";

    /// <summary>containerd's GC drops an expired lease's resources: a crash of ours, or a cache, is not kept for ever.</summary>
    public static Dictionary<string, string> Expiry(TimeSpan after) =>
        new() { ["containerd.io/gc.expire"] = DateTime.UtcNow.Add(after).ToString("yyyy-MM-ddTHH:mm:ssZ") };

    public static readonly TimeSpan CacheLifetime = TimeSpan.FromHours(24);

    /// <summary>Prepares <paramref name="key"/> on <paramref name="parent"/>, fills it with the state, commits it as <paramref name="name"/>.</summary>
    public void Make(string key, string name, string parent, RecordingState state, string work, Progress progress, CallOptions opts)
    {
        var (prepared, upper, why) = PrepareState(key, parent, opts);
        Fill(prepared.Mounts, upper, why, state, work, progress, opts);
        Commit(key, name, opts);
    }

    /// <summary>The active state snapshot <paramref name="key"/> on <paramref name="parent"/>, and its upper directory when we can write it ourselves.</summary>
    public (PrepareSnapshotResponse Prepared, string? Upper, string Why) PrepareState(string key, string parent, CallOptions opts)
    {
        var prepared = ContainerdClient.Rpc("prepare a snapshot", () => Prepare(key, parent, opts));
        steps.Done("prepare the state snapshot");
        return (prepared, OverlayUpper.Of(prepared.Mounts, out var why), why);
    }

    /// <summary>
    /// Puts the state into the active snapshot: straight into <paramref name="upper"/> (the overlay fast path), or
    /// as a tar layer through Diff.Apply when it is null (<paramref name="why"/> says why).
    /// </summary>
    public void Fill(IEnumerable<Mount> mounts, string? upper, string why, RecordingState state, string work, Progress progress, CallOptions opts)
    {
        if (upper is not null) Write(upper, "the overlay upper directory", state, progress);
        else
        {
            ApplyAsLayer(state, mounts, work, opts);
            How = $"a tar layer unpacked by containerd (Diff.Apply), as {why}";
        }
    }

    /// <summary>The state into the empty directory <paramref name="dir"/> as `export --out` writes it (whiteouts, opaque directories, owners, xattrs), on every core.</summary>
    public void Write(string dir, string where, RecordingState state, Progress progress)
    {
        ExportSummary summary;
        using (var exporter = new DirectoryExporter(store, dir, progress)) summary = exporter.Export(state);
        foreach (var w in summary.Warnings) Console.Error.WriteLine("diffkeeper: warning: " + w);
        summary.ThrowIfUnsafe();
        How = $"written into {where} ({summary.Entries} entries, {Human.Bytes(summary.Bytes)})";
        steps.Done($"write the state into {where}");
    }

    public void Commit(string key, string name, CallOptions opts)
    {
        ContainerdClient.Rpc("commit the state snapshot", () => _snapshots.Commit(new CommitSnapshotRequest { Snapshotter = snapshotter, Name = name, Key = key }, opts));
        steps.Done("commit the state snapshot");
    }

    public PrepareSnapshotResponse PrepareWritable(string key, string parent, CallOptions opts)
    {
        var rw = ContainerdClient.Rpc("prepare the writable snapshot", () => Prepare(key, parent, opts));
        steps.Done("prepare the writable snapshot");
        return rw;
    }

    /// <summary>
    /// The writable snapshot on the cached state snapshot <paramref name="name"/>, made first (under a lease of its
    /// own that expires after <see cref="CacheLifetime"/>) when it is not there. Two replays making it at once: the
    /// second commit finds the name taken and uses the first's.
    /// </summary>
    public (string Name, PrepareSnapshotResponse Rw) Cached(string name, string key, string rwKey, string parent, Func<RecordingState> state, string work, Progress progress, CallOptions opts)
    {
        if (TryPrepare(rwKey, name, opts) is { } hit)
        {
            steps.Done("prepare the writable snapshot");
            How = $"the cached snapshot {name}";
            return (name, hit);
        }
        steps.Done("look up the cached state");
        var leases = new Leases.LeasesClient(client.Invoker);
        try { leases.Create(new CreateRequest { Id = name, Labels = { Expiry(CacheLifetime) } }, client.Options()); }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists) { /* an earlier attempt's; it expires too */ }
        catch (RpcException e) { throw ContainerdClient.Explain(e, "create the cache lease"); }
        var cacheOpts = client.Options(name, TimeSpan.FromMinutes(10));
        try
        {
            Make(key, name, parent, state(), work, progress, cacheOpts);
            How += $", kept as {name}";
        }
        catch (IOException) when (TryPrepare(rwKey, name, opts) is { } theirs)
        {
            // Our commit found the name taken: another replay made the same snapshot meanwhile (ours goes at cleanup).
            How = $"the cached snapshot {name} (made meanwhile by another replay)";
            return (name, theirs);
        }
        return (name, PrepareWritable(rwKey, name, opts));
    }

    private PrepareSnapshotResponse? TryPrepare(string key, string parent, CallOptions opts)
    {
        try { return Prepare(key, parent, opts); }
        catch (RpcException) { return null; }
    }

    private PrepareSnapshotResponse Prepare(string key, string parent, CallOptions opts) =>
        _snapshots.Prepare(new PrepareSnapshotRequest { Snapshotter = snapshotter, Key = key, Parent = parent }, opts);

    /// <summary>The slow path: the state as an OCI layer (the writer of `export --oci`) in the content store, then Diff.Apply.</summary>
    private void ApplyAsLayer(RecordingState state, IEnumerable<Mount> mounts, string work, CallOptions opts)
    {
        var layerPath = Path.Combine(work, "layer.tar");
        string digest; long size;
        using (var fs = new FileStream(layerPath, FileMode.CreateNew, FileAccess.ReadWrite))
        using (var hash = new Oci.HashingStream(fs))
        {
            var summary = new TarExporter(store, hash, new Progress(false), ociLayer: true).Export(state);
            summary.ThrowIfUnsafe();
            (digest, size) = (hash.Digest(), hash.Length);
        }
        steps.Done("write the state as a tar layer");
        WriteContent(layerPath, digest, size, opts);
        steps.Done("write the layer into the content store");
        ContainerdClient.Rpc("apply the recorded layer", () => new Diff.DiffClient(client.Invoker).Apply(new ApplyRequest
        {
            Diff = new ContentDescriptor { MediaType = Oci.OciExporter.LayerMediaType, Digest = digest, Size = size },
            Mounts = { mounts },
        }, opts));
        steps.Done("apply the layer (Diff.Apply)");
    }

    /// <summary>Streams a file into the content store: WRITE in pieces, then COMMIT against the expected digest.</summary>
    private void WriteContent(string path, string digest, long size, CallOptions opts)
    {
        using var call = new Content.ContentClient(client.Invoker).Write(opts);
        var reference = "diffkeeper-replay-" + digest[7..19];
        try
        {
            using var f = File.OpenRead(path);
            var buf = new byte[1 << 20];
            long offset = 0;
            int n;
            do
            {
                n = f.Read(buf, 0, buf.Length);
                call.RequestStream.WriteAsync(new WriteContentRequest
                {
                    Action = WriteAction.Write, Ref = reference, Total = size, Expected = digest, Offset = offset, Data = ByteString.CopyFrom(buf, 0, n),
                }).GetAwaiter().GetResult();
                call.ResponseStream.MoveNext(CancellationToken.None).GetAwaiter().GetResult();
                offset += n;
            } while (n > 0 && offset < size);
            call.RequestStream.WriteAsync(new WriteContentRequest { Action = WriteAction.Commit, Ref = reference, Total = size, Expected = digest, Offset = offset })
                .GetAwaiter().GetResult();
            call.ResponseStream.MoveNext(CancellationToken.None).GetAwaiter().GetResult();
            call.RequestStream.CompleteAsync().GetAwaiter().GetResult();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists) { /* the same layer is there already */ }
        catch (RpcException e) { throw ContainerdClient.Explain(e, "write the recorded layer"); }
    }
}

/// <summary>With --verbose: the time since the process started at the end of each step, on stderr.</summary>
public sealed class ReplaySteps(bool verbose)
{
    // Only with -v: the process's start time (and DateTime.Now's time zone) cost ≈ 1 ms of a replay's critical path.
    private readonly long _start = verbose ? (long)(DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime).TotalMilliseconds : 0;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private long _last;

    /// <summary>Thread-safe: containerd's side of a replay runs while the store is read (the "+" is then since the step before on either side).</summary>
    public void Done(string step)
    {
        if (!verbose) return;
        lock (_clock)
        {
            long now = _start + _clock.ElapsedMilliseconds;
            Console.Error.WriteLine($"replay: {now,6} ms  +{now - _last,5} ms  {step}");
            _last = now;
        }
    }

    public void Say(string what)
    {
        if (verbose) Console.Error.WriteLine("replay: " + what);
    }
}
