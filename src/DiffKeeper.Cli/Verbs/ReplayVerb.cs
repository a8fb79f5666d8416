using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Containerd;
using DiffKeeper.Cli.Containerd.Api;
using DiffKeeper.Cli.Export;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;
using Google.Protobuf;
using Grpc.Core;

namespace DiffKeeper.Cli;

/// <summary>
/// `replay REC --at T`: a new container on containerd from the recorded image plus the state at T, spoken over
/// containerd's gRPC API as nerdctl does: under a lease, a snapshot is prepared on the image's chain and the state
/// at T put into it (written into its overlay upper directory, or as a tar layer through Diff.Apply for other
/// snapshotters: <see cref="Containerd.StateLayer"/>), committed read-only, and a fresh writable snapshot on top
/// becomes the container's rootfs. Everything it made goes at the end unless --keep (--cache keeps the state).
/// </summary>
public static class ReplayVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        if (a.Flags.Contains("keep") && a.Flags.Contains("rm")) throw new UsageException("--rm and --keep contradict each other");
        // On the idle core while this one opens the store: the gRPC calls' first-call costs (WarmUpCalls), then
        // OpenSSL (≈ 5 ms: libssl, libcrypto, openssl.cnf), with whose SHA-256 every chunk of the state is checked as
        // it is written — loaded here, not in the middle of the write. In this order because loading OpenSSL holds the
        // dynamic loader's lock, which the store's open needs first (librocksdb).
        new Thread(() =>
        {
            WarmUpCalls();
            try { SHA256.HashData(ReadOnlySpan<byte>.Empty); }
            catch (Exception) { } // only a head start: the writer's own use reports a missing OpenSSL
        }) { IsBackground = true, Name = "replay-warm-up" }.Start();
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        long at = a.Value("at") is { } t ? TimeArgs.Moment(t, src.Recording, "--at") : src.Recording.End;
        var options = ReplayOptions.From(a) with
        {
            TmpfsMax = a.Value("tmpfs-max") is { } max ? GcVerb.ParseSize(max) : null,
            Keep = a.Flags.Contains("keep"), Tty = a.Flags.Contains("tty"), Interactive = a.Flags.Contains("interactive"), Cache = a.Flags.Contains("cache"), Verbose = a.Flags.Contains("verbose"), Name = a.Value("name"),
        };
        return Replay(src, at, a.Positionals.Skip(1).ToList(), options, ctx);
    }

    /// <summary>Replays the moment <paramref name="at"/> and runs <paramref name="command"/> (empty: the recorded or the image's process) in it.</summary>
    public static int Replay(RecordingSource src, long at, List<string> command, ReplayOptions o, CliContext ctx)
    {
        var steps = new ReplaySteps(o.Verbose);
        var rec = src.Recording;
        var image = o.Image ?? rec.Image ?? throw new UsageException("the recording names no image: give --image REF");
        bool keep = o.Keep, tty = o.Tty, cache = o.Cache;
        var snapshotter = o.Snapshotter;
        var address = ContainerdClient.ResolveAddress(o.Address);
        var ns = ContainerdClient.ResolveNamespace(o.Namespace, rec.Namespace);
        using var client = ContainerdClient.TryConnect(address, ns) ?? throw new NotFoundException($"no containerd socket at {address} (give --address)");
        var runtime = o.Runtime;
        // A name, not a secret: Random.Shared spares loading OpenSSL on this thread before the first RPC.
        var id = o.Name ?? $"diffkeeper-replay-{rec.IdText}-{Random.Shared.Next():x8}";
        steps.Done("open the recording");

        var work = Directory.CreateTempSubdirectory("diffkeeper-replay-").FullName;
        var leases = new Leases.LeasesClient(client.Invoker);
        var snapshots = new Snapshots.SnapshotsClient(client.Invoker);
        var containers = new Containers.ContainersClient(client.Invoker);
        var tasks = new Tasks.TasksClient(client.Invoker);
        var lease = id;
        var layer = new StateLayer(client, snapshotter, src.Store, steps);
        string stateKey = id + "-state-prepare", stateName = id + "-state", rwKey = id;
        var opts = client.Options(lease, TimeSpan.FromMinutes(10));
        // Without --keep or --cache nothing outlives the replay, so the state snapshot need not be committed: the
        // writable snapshot is prepared on the image beside it and the state's directory laid between them
        // (OverlayUpper.Under). --keep and --cache commit it, so what stays is a snapshot chain containerd knows.
        bool compose = !keep && !cache;
        // containerd's side (the image, the lease, the snapshots) goes on while the store answers (the state at T,
        // the recorded process): neither waits on the other until the state is written.
        var containerdSide = Task.Run(() => PrepareContainerd(client, image, lease, layer, stateKey, rwKey, cache, compose, steps, opts));
        RecordingState StateAt() => StateQuery.At(src.Store, rec.Id, at, withChunks: true);
        bool containerMade = false, taskMade = false;
        Task? fill = null;
        StateTmpfs? tmpfs = null;
        int exit;
        try
        {
            var state = cache ? null : StateAt();
            // The process the daemon recorded (args, cwd, user, env names): its cwd and user also go with a CMD given.
            var recorded = RecordedProcess.Of(src.Store, rec);
            steps.Done("read the state at T and the recorded process");
            // Nothing kept: a state that fits in memory goes into a tmpfs of its own (StateTmpfs says why), written
            // at once, before containerd has answered.
            string tmpfsWhy = "";
            if (compose)
            {
                if (StateTmpfs.Unsuitable(state!, o.TmpfsMax ?? StateTmpfs.DefaultBudget(), out var needs) is { } unsuitable) tmpfsWhy = unsuitable;
                else if ((tmpfs = StateTmpfs.TryMount(Path.Combine(work, "state"), needs, out tmpfsWhy)) is { } memory)
                    // On a thread of its own (as are the writer's helpers): the pool's threads run containerd's side.
                    fill = Task.Factory.StartNew(() => layer.Write(memory.Dir, $"a tmpfs of {Human.Bytes(memory.Size)}", state!, ctx.Progress),
                        TaskCreationOptions.LongRunning);
            }
            var side = containerdSide.GetAwaiter().GetResult();

            // The state at T as a read-only layer on the image's chain, under a fresh writable snapshot.
            IReadOnlyList<Mount> rootfs;
            if (cache)
            {
                var (name, rw) = layer.Cached(StateLayer.CacheName(rec.IdText, at, side.ChainId), stateKey, rwKey, side.ChainId,
                    StateAt, work, ctx.Progress, opts);
                (stateName, rootfs) = (name, rw.Mounts);
            }
            else if (tmpfs is not null && side.Writable is { } onImage)
            {
                // Containerd makes the container (which only names the snapshot) while the state is written.
                MakeContainer();
                fill!.GetAwaiter().GetResult();
                rootfs = [OverlayUpper.Under(tmpfs.Dir, onImage.Mounts.Single())];
            }
            else
            {
                if (tmpfs is not null)
                {
                    // The snapshotter's mount is no overlay we can add a layer to: the state goes into the snapshot.
                    fill!.GetAwaiter().GetResult();
                    tmpfs.Dispose();
                    (tmpfs, tmpfsWhy) = (null, "the writable snapshot is not an overlay mount");
                }
                var st = side.State ?? layer.PrepareState(stateKey, side.ChainId, opts);
                // Written on every core while containerd makes the container (which only names the snapshot).
                fill = Task.Run(() => layer.Fill(st.Prepared.Mounts, st.Upper, st.Why, state!, work, ctx.Progress, opts));
                MakeContainer();
                fill.GetAwaiter().GetResult();
                if (side.Writable is { } rwOnImage && st.Upper is not null) rootfs = [OverlayUpper.Under(st.Upper, rwOnImage.Mounts.Single())];
                else
                {
                    layer.Commit(stateKey, stateName, opts);
                    rootfs = layer.PrepareWritable(rwKey, stateName, opts).Mounts;
                }
            }
            steps.Say($"state at {Moments.Format(at)}: {layer.How}{(side.Writable is not null ? ", laid under the writable snapshot (not committed)" : "")}" +
                (compose && tmpfs is null && !string.IsNullOrEmpty(tmpfsWhy) ? $"; not in memory: {tmpfsWhy}" : ""));
            if (!containerMade) MakeContainer();

            void MakeContainer()
            {
                CreateContainer(containers, Spec(side.Config, command, recorded, tty, id, ns, o), id, image, snapshotter, rwKey, runtime, rec, at, opts);
                containerMade = true;
                steps.Done("create the container");
            }

            // The streams are FIFOs the shim opens at create; what the task writes is copied out as it comes.
            using var io = new TaskIo(work, tty, o.OutputToStderr, o.Interactive);
            Rpc("create the task", () => tasks.Create(new CreateTaskRequest
            {
                ContainerId = id, Rootfs = { rootfs }, Terminal = tty, Stdin = io.Stdin ?? "", Stdout = io.Stdout, Stderr = io.Stderr ?? "",
            }, opts));
            taskMade = true;
            steps.Done("create the task");
            // The container's overlay mount holds the tmpfs now: ours goes, its memory with the container's rootfs
            // (no mount of ours is left if we are killed). Not when the replay is itself recorded: its recorder
            // looks paths up in the lower layers to tell a copy-up from a creation; then it goes at our end.
            if (!runtime.Contains("diffkeeper", StringComparison.Ordinal)) tmpfs?.Detach();
            using (var waitCall = tasks.WaitAsync(new WaitRequest { ContainerId = id }, client.Options(lease)))
            {
                Rpc("start the task", () => tasks.Start(new StartRequest { ContainerId = id }, opts));
                steps.Done("start the task");
                void Resize()
                {
                    if (TaskIo.WindowSize() is { } window)
                        Try(() => tasks.ResizePty(new ResizePtyRequest { ContainerId = id, Width = window.Width, Height = window.Height }, client.Options(lease, TimeSpan.FromSeconds(10))));
                }
                // Our terminal's size now, and again whenever it changes (SIGWINCH) while the task runs.
                using var onResize = tty ? PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => Resize()) : null;
                if (tty) Resize();
                io.RawMode();
                exit = (int)Rpc("wait for the task", () => waitCall.ResponseAsync.GetAwaiter().GetResult()).ExitStatus;
            }
            io.Drain(TimeSpan.FromSeconds(10));
        }
        finally
        {
            // Nothing of ours may still be running when we clean up (an error on one side leaves the other going).
            try { Task.WaitAll(fill is null ? [containerdSide] : [containerdSide, fill]); } catch (AggregateException) { }
            // Best effort and in reverse: a failing step must not keep the others from running.
            var noLease = client.Options(null, TimeSpan.FromMinutes(1));
            if (taskMade) Try(() => tasks.Delete(new DeleteTaskRequest { ContainerId = id }, noLease));
            if (!keep)
            {
                if (containerMade) Try(() => containers.Delete(new DeleteContainerRequest { Id = id }, noLease));
                Try(() => snapshots.Remove(new RemoveSnapshotRequest { Snapshotter = snapshotter, Key = rwKey }, noLease));
                Try(() => snapshots.Remove(new RemoveSnapshotRequest { Snapshotter = snapshotter, Key = stateKey }, noLease));
                // A cached state snapshot stays for later replays of the moment, under its own expiring lease.
                if (!cache) Try(() => snapshots.Remove(new RemoveSnapshotRequest { Snapshotter = snapshotter, Key = stateName }, noLease));
                Try(() => leases.Delete(new DeleteRequest { Id = lease, Sync = true }, noLease));
            }
            tmpfs?.Dispose();
            try { Directory.Delete(work, true); } catch (IOException) { }
        }
        return exit;
    }

    /// <summary>The kinds of gRPC call a replay makes before its task runs, in the order it makes them (ContainerdClient.WarmUp).</summary>
    private static void WarmUpCalls() => ContainerdClient.WarmUp(
        (c, o) => new Images.ImagesClient(c).Get(new GetImageRequest(), o),
        (c, o) =>
        {
            using var read = new Content.ContentClient(c).Read(new ReadContentRequest(), o);
            read.ResponseStream.MoveNext(CancellationToken.None).GetAwaiter().GetResult();
        },
        (c, o) => new Leases.LeasesClient(c).Create(new CreateRequest(), o),
        (c, o) => new Snapshots.SnapshotsClient(c).Prepare(new PrepareSnapshotRequest(), o),
        (c, o) => new Containers.ContainersClient(c).Create(new CreateContainerRequest(), o),
        (c, o) => new Tasks.TasksClient(c).Create(new CreateTaskRequest(), o),
        (c, o) =>
        {
            using var wait = new Tasks.TasksClient(c).WaitAsync(new WaitRequest(), o);
            wait.ResponseAsync.GetAwaiter().GetResult();
        },
        (c, o) => new Tasks.TasksClient(c).Start(new StartRequest(), o));

    /// <summary>What containerd has ready before the state is written: the image, and (without --cache) either the writable snapshot on the image (composing, on the overlay fast path) or the active state snapshot.</summary>
    private sealed record ContainerdSide(JsonObject Config, string ChainId, (PrepareSnapshotResponse Prepared, string? Upper, string Why)? State, PrepareSnapshotResponse? Writable);

    private static ContainerdSide PrepareContainerd(ContainerdClient client, string image, string lease, StateLayer layer, string stateKey, string rwKey,
        bool cache, bool compose, ReplaySteps steps, CallOptions opts)
    {
        // The image: its config (process defaults) and the chain id of its layers (the snapshot they unpack to).
        var (config, chainId) = ImageConfig(client, image);
        steps.Done("read the image");
        Rpc("create a lease", () => new Leases.LeasesClient(client.Invoker).Create(new CreateRequest { Id = lease, Labels = { StateLayer.Expiry(TimeSpan.FromHours(24)) } }, client.Options()));
        if (cache) return new(config, chainId, null, null); // the cached state snapshot is looked up later
        if (compose)
        {
            // The writable snapshot on the image, for the state's directory to go between: only on the overlay fast
            // path. The state snapshot is then prepared only if the state does not go into a tmpfs (ReplayVerb).
            var rw = layer.PrepareWritable(rwKey, chainId, opts);
            if (OverlayUpper.Of(rw.Mounts, out _) is not null) return new(config, chainId, null, rw);
            Rpc("remove a snapshot", () => new Snapshots.SnapshotsClient(client.Invoker).Remove(new RemoveSnapshotRequest { Snapshotter = layer.Snapshotter, Key = rwKey }, opts));
        }
        return new(config, chainId, layer.PrepareState(stateKey, chainId, opts), null);
    }

    private static void CreateContainer(Containers.ContainersClient containers, byte[] spec, string id, string image, string snapshotter, string rwKey,
        string runtime, RecordingInfo rec, long at, CallOptions opts) =>
        Rpc("create the container", () => containers.Create(new CreateContainerRequest
        {
            Container = new Container
            {
                Id = id, Image = image, Snapshotter = snapshotter, SnapshotKey = rwKey,
                Labels = { ["io.diffkeeper.replay.recording"] = rec.IdText, ["io.diffkeeper.replay.at"] = Moments.Format(at) },
                Runtime = new Container.Types.Runtime { Name = runtime },
                Spec = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value = ByteString.CopyFrom(spec) },
            },
        }, opts));

    private static T Rpc<T>(string what, Func<T> call) => ContainerdClient.Rpc(what, call);

    private static void Try(Action a)
    {
        try { a(); } catch (RpcException) { }
    }

    private static (JsonObject Config, string ChainId) ImageConfig(ContainerdClient client, string image)
    {
        var target = client.GetImageTarget(image);
        var desc = new JsonObject { ["mediaType"] = target.MediaType, ["digest"] = target.Digest };
        for (int depth = 0; ; depth++)
        {
            var mt = (string?)desc["mediaType"];
            var doc = JsonNode.Parse(client.ReadSmallBlob((string)desc["digest"]!)) as JsonObject ?? throw new CorruptDataException($"image {image}: not a JSON object");
            if (mt is "application/vnd.oci.image.index.v1+json" or "application/vnd.docker.distribution.manifest.list.v2+json")
            {
                if (depth > 4) throw new CorruptDataException($"image {image}: indexes nested too deep");
                var all = (doc["manifests"] as JsonArray ?? []).OfType<JsonObject>().ToList();
                desc = all.FirstOrDefault(d => (string?)d["platform"]?["os"] == "linux" && (string?)d["platform"]?["architecture"] == "amd64") ?? all.FirstOrDefault()
                    ?? throw new CorruptDataException($"image {image}: an empty index");
                continue;
            }
            var configDigest = (string?)doc["config"]?["digest"] ?? throw new CorruptDataException($"image {image}: a manifest without a config");
            var config = JsonNode.Parse(client.ReadSmallBlob(configDigest)) as JsonObject ?? throw new CorruptDataException($"image {image}: the config is not a JSON object");
            // chain(0) = diff_id(0); chain(n) = sha256(chain(n-1) + " " + diff_id(n)): the name containerd unpacks to.
            string? chain = null;
            foreach (var d in config["rootfs"]?["diff_ids"] as JsonArray ?? [])
                chain = chain is null ? (string)d! : "sha256:" + Convert.ToHexStringLower(DiffKeeper.Common.Hashing.Sha256.Hash(Encoding.ASCII.GetBytes(chain + " " + (string)d!)));
            return (config, chain ?? "");
        }
    }

    /// <summary>
    /// An OCI runtime spec like containerd's default (ctr run). The process: -- CMD, else the recorded one, else
    /// the image's. Env: the image's (values are never recorded; a recorded name the image does not set is named
    /// on stderr, not invented); cwd and user: the recorded ones, else the image's.
    /// </summary>
    private static byte[] Spec(JsonObject imageConfig, List<string> command, RecordedProcess? recorded, bool tty, string id, string ns, ReplayOptions o)
    {
        var c = imageConfig["config"] as JsonObject ?? [];
        var args = command.Count > 0 ? command
            : recorded is not null ? [.. recorded.Args]
            : [.. (c["Entrypoint"] as JsonArray ?? []).Select(x => (string)x!), .. (c["Cmd"] as JsonArray ?? []).Select(x => (string)x!)];
        if (args.Count == 0) throw new UsageException("the image has no command: give one after --");
        var env = (c["Env"] as JsonArray ?? []).Select(x => (string)x!).ToList();
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env.Add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if (tty && !env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal))) env.Add("TERM=" + (Environment.GetEnvironmentVariable("TERM") is { Length: > 0 } term ? term : "xterm"));
        if (recorded is not null)
        {
            var unset = recorded.EnvNames.Where(n => !env.Any(e => e.StartsWith(n + "=", StringComparison.Ordinal))).ToList();
            if (unset.Count > 0) Console.Error.WriteLine($"replay: the recording names env {string.Join(' ', unset)} without values (never recorded): not set");
        }
        env.AddRange(o.Env);
        var cwd = o.Cwd ?? recorded?.Cwd ?? ((string?)c["WorkingDir"] is { Length: > 0 } w ? w : "/");
        uint uid = 0, gid = 0;
        if (recorded?.User is { } ru) (uid, gid) = ru;
        else if ((string?)c["User"] is { Length: > 0 } user)
        {
            var parts = user.Split(':');
            if (!uint.TryParse(parts[0], out uid) || (parts.Length > 1 && !uint.TryParse(parts[1], out gid)))
                throw new UsageException($"the image's user {user} is not numeric (names are not resolved yet)");
        }
        string[] caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
            "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"];
        var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms))
        {
            j.WriteStartObject();
            j.WriteString("ociVersion", "1.0.2-dev");
            j.WriteStartObject("process");
            j.WriteBoolean("terminal", tty);
            j.WriteStartObject("user"); j.WriteNumber("uid", uid); j.WriteNumber("gid", gid); j.WriteEndObject();
            Strings(j, "args", args);
            Strings(j, "env", env);
            j.WriteString("cwd", cwd);
            j.WriteStartObject("capabilities");
            foreach (var set in new[] { "bounding", "effective", "permitted" }) Strings(j, set, caps);
            j.WriteEndObject();
            j.WriteStartArray("rlimits");
            j.WriteStartObject(); j.WriteString("type", "RLIMIT_NOFILE"); j.WriteNumber("hard", 1024); j.WriteNumber("soft", 1024); j.WriteEndObject();
            j.WriteEndArray();
            j.WriteBoolean("noNewPrivileges", true);
            j.WriteEndObject();
            j.WriteStartObject("root"); j.WriteString("path", "rootfs"); j.WriteEndObject();
            j.WriteString("hostname", id.Length > 63 ? id[..63] : id);
            j.WriteStartArray("mounts");
            Mount(j, "/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]);
            Mount(j, "/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]);
            Mount(j, "/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
            Mount(j, "/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]);
            Mount(j, "/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]);
            Mount(j, "/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]);
            Mount(j, "/run", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]);
            j.WriteEndArray();
            j.WriteStartObject("linux");
            j.WriteString("cgroupsPath", $"/{ns}/{id}");
            j.WriteStartObject("resources");
            j.WriteStartArray("devices"); j.WriteStartObject(); j.WriteBoolean("allow", false); j.WriteString("access", "rwm"); j.WriteEndObject(); j.WriteEndArray();
            j.WriteEndObject();
            j.WriteStartArray("namespaces");
            foreach (var n in new[] { "pid", "ipc", "uts", "mount", "network" }) { j.WriteStartObject(); j.WriteString("type", n); j.WriteEndObject(); }
            j.WriteEndArray();
            Strings(j, "maskedPaths", ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]);
            Strings(j, "readonlyPaths", ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
            j.WriteEndObject();
            j.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void Strings(Utf8JsonWriter j, string name, IEnumerable<string> values)
    {
        j.WriteStartArray(name);
        foreach (var v in values) j.WriteStringValue(v);
        j.WriteEndArray();
    }

    private static void Mount(Utf8JsonWriter j, string dest, string type, string source, string[] options)
    {
        j.WriteStartObject();
        j.WriteString("destination", dest); j.WriteString("type", type); j.WriteString("source", source);
        Strings(j, "options", options);
        j.WriteEndObject();
    }
}

/// <summary>How to replay: containerd and image choices from the command line, plus what a caller (bisect) sets.</summary>
public sealed record ReplayOptions(string? Image, string? Address, string? Namespace, string Runtime, string Snapshotter)
{
    public string? Name { get; init; }
    /// <summary>--tmpfs-max: the most memory the state of a replay that keeps nothing may take (null: StateTmpfs.DefaultBudget; 0: never).</summary>
    public long? TmpfsMax { get; init; }
    public bool Keep { get; init; }
    public bool Tty { get; init; }
    /// <summary>-i: our stdin goes to the task (without a terminal: through a FIFO, EOF closes it).</summary>
    public bool Interactive { get; init; }
    public bool Cache { get; init; }
    public bool Verbose { get; init; }
    /// <summary>The task's output to our stderr (bisect: stdout carries the probes).</summary>
    public bool OutputToStderr { get; init; }
    /// <summary>Overrides the recorded or image working directory.</summary>
    public string? Cwd { get; init; }
    /// <summary>Added to the image's env (NAME=VALUE).</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>--image, --address, --namespace, --runtime, --snapshotter (the options replay and bisect --replay share).</summary>
    public static ReplayOptions From(ParsedArgs a) =>
        new(a.Value("image"), a.Value("address"), a.Value("namespace"), a.Value("runtime") ?? "io.containerd.runc.v2", a.Value("snapshotter") ?? "overlayfs");
}
