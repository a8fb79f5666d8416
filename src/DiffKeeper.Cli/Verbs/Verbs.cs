using System.Text;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Store;

namespace DiffKeeper.Cli;

/// <summary>The verb table: each verb's usage, options, examples and code; help is generated from it.</summary>
public static class Verbs
{
    public const string Version = "diffkeeper 0.1.0";

    private static readonly Dictionary<string, VerbSpec> Table = new VerbSpec[]
    {
        new("ls", "diffkeeper ls [oci://HOST[:PORT]/REPO [--plain-http]] [--json]",
            "List recordings: id, name or container id, start, end, exit status, versions, stored bytes. With oci://HOST/REPO: the recordings pushed to that repository (tag, id, name, start, end, exit status).",
            [new("plain-http", null, false, "talk HTTP, not HTTPS (a local registry)")],
            ["diffkeeper ls", "diffkeeper --store /tmp/s ls --json", "diffkeeper ls oci://registry.example/recordings"], LsVerb.Run, 0, 1),
        new("timeline", "diffkeeper timeline REC [--from T] [--to T] [--path GLOB]",
            "One row per event, captured version and gap of a recording, in time order.",
            [
                new("from", null, true, "start of the time range (default: start)", "T"),
                new("to", null, true, "end of the time range (default: end)", "T"),
                new("path", null, true, "only paths matching GLOB (* within a segment, ** across segments; default: every path)", "GLOB"),
            ],
            ["diffkeeper timeline ci-job-42", "diffkeeper timeline ci-job-42 --path '/var/log/**' --from 1s --to 2m"], TimelineVerb.Run, 1, 1),
        new("show", "diffkeeper show REC PATH [--at T]",
            "Print a file's content at T (byte-exact); a symlink prints its target, a directory lists its entries. --json prints metadata.",
            [new("at", null, true, "the moment (default: end)", "T")],
            ["diffkeeper show ci-job-42 /etc/app.conf --at 1.5s", "diffkeeper show ci-job-42 /etc --json"], ShowVerb.Run, 2, 2),
        new("diff", "diffkeeper diff REC T1 T2   (or --from T1 --to T2)",
            "What changed from T1 to T2: A added, M modified, D deleted, R renamed, T metadata only.",
            [new("from", null, true, "the earlier moment", "T1"), new("to", null, true, "the later moment", "T2")],
            ["diffkeeper diff ci-job-42 start end", "diffkeeper diff ci-job-42 --from 1s --to 2026-11-23T10:00:00Z"], DiffVerb.Run, 1, 3),
        new("export", "diffkeeper export REC [--at T] --out DIR|FILE.tar   (or --oci FILE.tar | --oci-layout DIR [--base IMAGE.tar | --image REF] [--tag NAME])",
            "Write the whole state at T into a new (empty or absent) directory, or a PAX tar archive if the name ends in .tar; or an OCI image: the base image's layers plus one layer with the state at T.",
            [
                new("at", null, true, "the moment (default: end)", "T"), new("out", "o", true, "target directory or .tar file", "DIR|FILE.tar"),
                new("oci", null, true, "write an OCI image archive (ctr image import, skopeo copy oci-archive:, podman load)", "FILE.tar"),
                new("oci-layout", null, true, "write an OCI image layout into a new (empty or absent) directory", "DIR"),
                new("base", null, true, "the recorded image as an OCI archive or docker save archive: its layers go under ours", "IMAGE.tar"),
                new("tag", null, true, "the image name in the OCI index (default: localhost/diffkeeper/NAME:at-MSms)", "NAME"),
                new("image", null, true, "without --base: the base image in containerd (default: the recorded image)", "REF"),
                new("address", "a", true, "containerd's socket (else CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)", "SOCK"),
                new("namespace", "n", true, "containerd namespace (else CONTAINERD_NAMESPACE, else the recording's, else default)", "NS"),
            ],
            ["diffkeeper export ci-job-42 --at end --out /tmp/state", "diffkeeper export ci-job-42 --at 3s --out state.tar",
             "diffkeeper export ci-job-42 --at 3s --oci img.tar --base busybox.tar --tag localhost/debug:crash"], ExportVerb.Run, 1, 1),
        new("snapshot", "diffkeeper snapshot DIR --recording NAME [--at T] [--merged DIR]",
            "Read DIR as an overlay upper layer (char 0:0 = whiteout, trusted.overlay.opaque=y = opaque) and make it the recording's state at T: recorded paths no longer in DIR are deleted at T. Creates the recording on first use.",
            [
                new("recording", "r", true, "recording name (or id)", "NAME"), new("at", null, true, "the moment (default: now)", "T"),
                new("merged", null, true, "the overlay's merged view of DIR: data of metadata-only copy-ups (metacopy) is read there", "DIR"),
            ],
            ["diffkeeper snapshot /var/lib/upper --recording demo", "diffkeeper snapshot ./state2 --recording demo --at 5s"], SnapshotVerb.Run, 1, 1),
        new("replay", "diffkeeper replay REC [--at T] [--image REF] [--runtime R] [-t] [-i] [--rm|--keep] [--cache] [--tmpfs-max SIZE] [--snapshotter NAME] [-v] [--name ID] [-- CMD ARGS...]",
            "Start a new container on containerd from the recorded image plus the state at T (a read-only layer under a fresh writable one), running the recorded process (args, cwd, user; env from the image: values are never recorded) unless CMD is given; streams its output and exits with its status.",
            [
                new("tty", "t", false, "give the task a terminal and connect ours (raw mode, window size, resized as ours is)"),
                new("interactive", "i", false, "pass our stdin to the task (implied by -t; EOF closes it)"),
                new("rm", null, false, "remove the container, snapshots and lease afterwards (the default)"),
                new("at", null, true, "the moment (default: end)", "T"),
                new("image", null, true, "the image (default: the recorded one)", "REF"),
                new("runtime", null, true, "containerd runtime (default io.containerd.runc.v2; io.containerd.diffkeeper.v1 records the replay)", "R"),
                new("keep", null, false, "keep the container, snapshots and lease afterwards"),
                new("cache", null, false, "keep the state at T as a snapshot (24 h, under its own lease) and reuse it in later replays of the moment"),
                new("tmpfs-max", null, true, "without --keep/--cache, the state at T goes into a tmpfs when it needs at most SIZE of memory (default a quarter of the available memory, at most 1G; 0 = never)", "SIZE"),
                new("snapshotter", null, true, "containerd snapshotter (default overlayfs, written directly; others get a tar layer unpacked by containerd)", "NAME"),
                new("verbose", "v", false, "say how the state got in and the time of each step, on stderr"),
                new("name", null, true, "the container id (default diffkeeper-replay-REC-RANDOM)", "ID"),
                new("address", "a", true, "containerd's socket (else CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)", "SOCK"),
                new("namespace", "n", true, "containerd namespace (else CONTAINERD_NAMESPACE, else the recording's, else default)", "NS"),
            ],
            ["diffkeeper replay ci-job-42 --at 3.2s", "diffkeeper replay ci-job-42 --at end -- cat /var/log/app.log"], ReplayVerb.Run, 1, int.MaxValue),
        new("push", "diffkeeper push REC oci://HOST[:PORT]/REPO[:TAG] [--plain-http]",
            "Push a recording to an OCI registry as an artifact (one packed layer, the summary in annotations).",
            [new("plain-http", null, false, "talk HTTP, not HTTPS (a local registry)")],
            ["diffkeeper push ci-job-42 oci://registry.example/recordings:ci-job-42"], PushVerb.Push, 2, 2),
        new("pull", "diffkeeper pull oci://HOST[:PORT]/REPO[:TAG] -o FILE [--plain-http]",
            "Fetch a recording pushed with push into a packed file (usable as REC anywhere); its digest and checksums are verified.",
            [new("output", "o", true, "the packed file to write", "FILE"), new("plain-http", null, false, "talk HTTP, not HTTPS (a local registry)")],
            ["diffkeeper pull oci://registry.example/recordings:ci-job-42 -o job.dkpack"], PushVerb.Pull, 1, 1),
        new("pack", "diffkeeper pack REC -o FILE",
            "Write one portable checksummed file with the recording and only its chunks; FILE can be used as REC anywhere.",
            [new("output", "o", true, "the packed file to write", "FILE")],
            ["diffkeeper pack ci-job-42 -o ci-job-42.dkpack", "diffkeeper show ./ci-job-42.dkpack /etc/app.conf"], PackVerb.Run, 1, 1),
        new("report", "diffkeeper report REC -o FILE.html [--max-file-bytes SIZE] [--max-total-bytes SIZE]",
            "Write one self-contained HTML page to explore the recording. It needs no network and works from file://: header with exit status and gaps, a timeline to scrub, the tree at any moment, a file's content, diff and history, path search and deep links (FILE.html#t=3.2s&path=/etc/app.conf).",
            [
                new("output", "o", true, "the HTML file to write", "FILE.html"),
                new("max-file-bytes", null, true, "embed the content of file versions up to this size (default 256K); bigger ones keep size only", "SIZE"),
                new("max-total-bytes", null, true, "embed at most this much file content in total (default 3M), newest versions first", "SIZE"),
            ],
            ["diffkeeper report ci-job-42 -o report.html", "diffkeeper report ./ci-job-42.dkpack -o r.html --max-total-bytes 20M",
             "xdg-open 'report.html#t=3.2s&path=/etc/app.conf'"], ReportVerb.Run, 1, 1),
        new("bisect", "diffkeeper bisect REC --test CMD [--from T] [--to T] [--keep] [--replay [--image REF] [--address SOCK] [--namespace NS]]",
            "Binary search over the recording's moments for the first at which CMD fails. CMD runs through sh -c in the state exported at that moment (its working directory, also in $DIFFKEEPER_STATE); exit 0 = good, anything else = bad. Prints each probe, then the first bad moment with its changes and the processes that made them.",
            [
                new("test", null, true, "the check, run with sh -c in the exported state", "CMD"),
                new("from", null, true, "first moment to consider (default: start)", "T"),
                new("to", null, true, "last moment to consider (default: end)", "T"),
                new("keep", null, false, "keep the exported state of the first bad moment and print where it is"),
                new("replay", null, false, "run CMD inside a container replayed at each probed moment (see replay), from /"),
                new("image", null, true, "with --replay: the image (default: the recorded one)", "REF"),
                new("runtime", null, true, "with --replay: containerd runtime", "R"),
                new("snapshotter", null, true, "with --replay: containerd snapshotter (default overlayfs)", "NAME"),
                new("address", "a", true, "with --replay: containerd's socket", "SOCK"),
                new("namespace", "n", true, "with --replay: containerd namespace", "NS"),
            ],
            ["diffkeeper bisect ci-job-42 --test 'grep -q \"^port=8080$\" etc/app.conf'",
             "diffkeeper bisect ci-job-42 --test 'test -s var/lib/app/db' --from 1s --to end --json"], BisectVerb.Run, 1, 1),
        new("collect", "diffkeeper collect -o DIR [--failed] [--since T] [--max-file-bytes SIZE] [--max-total-bytes SIZE]",
            "Pack the node's recordings into DIR for a CI artifact. Per recording a packed file (ID.dkpack) and a report (ID.html), plus index.html and index.json.",
            [
                new("output", "o", true, "the directory to fill (created; must be empty if it exists)", "DIR"),
                new("failed", null, false, "only recordings whose container exited with a non-zero status"),
                new("since", null, true, "only recordings started at or after T (RFC 3339, or a duration back from now: 2h, 30m; default: all)", "T"),
                new("max-file-bytes", null, true, "as for report", "SIZE"),
                new("max-total-bytes", null, true, "as for report", "SIZE"),
            ],
            ["diffkeeper collect --failed -o artifacts/diffkeeper", "diffkeeper collect --since 2h -o /tmp/dk --json"], CollectVerb.Run, 0, 0),
        new("record", "diffkeeper record [--dir DIR]... [--name NAME] [--keep always|failure] [--summary FILE] -- CMD ARGS...",
            "Run CMD and record what it and every process it starts change under the watched directories, from start to exit, with pid, comm and time, like a container recording. CMD keeps its stdin, stdout and stderr; SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to it; record exits with CMD's status (128+N when killed by signal N). The files stay where CMD put them. Needs root (CMD runs in a cgroup v2 of its own); without a running diffkeeperd a private one is started for the store and stopped at the end. When the recording cannot be set up, CMD still runs, unrecorded, after a warning.",
            [
                new("dir", "d", true, "a directory to watch (repeatable; default: the current directory)", "DIR"),
                new("name", null, true, "the recording's name (default: CMD's base name)", "NAME"),
                new("keep", null, true, "always (default) or failure: drop the recording when CMD exits 0", "always|failure"),
                new("summary", null, true, "write the summary as JSON into FILE (--json prints it on stderr)", "FILE"),
                new("socket", null, true, "diffkeeperd's socket (default $DIFFKEEPER_SOCKET or /run/diffkeeper/diffkeeperd.sock)", "PATH"),
            ],
            ["diffkeeper record -- go test ./...", "diffkeeper record --dir . --dir /tmp/out --name ci-42 --keep failure -- pytest -x",
             "diffkeeper record --json -- make check 2> >(tail -1 > summary.json)"], RecordVerb.Run, 1, int.MaxValue),
        new("gc", "diffkeeper gc [--keep-last N] [--max-bytes SIZE] [--keep-failed-only] [--dry-run]",
            "Drop recordings by the policy, then remove chunks no recording uses (mark and sweep).",
            [
                new("keep-last", null, true, "keep only the newest N recordings (default: no limit)", "N"),
                new("max-bytes", null, true, "drop the oldest recordings until the rest fit, e.g. 10G, 500M (default: no limit)", "SIZE"),
                new("keep-failed-only", null, false, "drop recordings whose container exited with status 0"),
                new("dry-run", null, false, "only print what would be removed"),
            ],
            ["diffkeeper gc --keep-last 20", "diffkeeper gc --keep-failed-only --max-bytes 5G --dry-run"], GcVerb.Run, 0, 0),
        new("doctor", "diffkeeper doctor [--store-only] [--containerd-config PATH] [--socket PATH]",
            "Check the node (kernel BTF, tracepoints, BPF permission, libbpf, the shim on containerd's PATH, containerd's CRI config, the daemon's socket and store, gaps in the last 24 h; each failure says what to run), then the store: it opens, every referenced chunk exists and hashes right, no orphan metadata. With --store (or DIFFKEEPER_STORE) or --store-only: that store only. Exit 1 when the node is not ready, 4 when the store is damaged.",
            [
                new("store-only", null, false, "check only the store (implied by --store / DIFFKEEPER_STORE)"),
                new("containerd-config", null, true, "containerd's config (default /etc/containerd/config.toml)", "PATH"),
                new("socket", null, true, "diffkeeperd's socket (default $DIFFKEEPER_SOCKET or /run/diffkeeper/diffkeeperd.sock)", "PATH"),
            ],
            ["diffkeeper doctor", "diffkeeper doctor --json", "diffkeeper --store /tmp/s doctor --json"], DoctorVerb.Run, 0, 0),
        new("setup", "diffkeeper setup containerd [--config PATH] [--dry-run] [--undo]",
            "Add the diffkeeper runtime (handler for a Kubernetes RuntimeClass) to containerd's CRI config: config version 2 (containerd 1.6/1.7) or 3 (2.x); comments, order and every other byte kept; the default runc runtime kept; the node's runc options (SystemdCgroup …) carried over; a backup beside the file. Prints the change as a diff and whether containerd needs a restart. Idempotent.",
            [
                new("config", null, true, "containerd's config (default /etc/containerd/config.toml)", "PATH"),
                new("dry-run", null, false, "print the change, write nothing"),
                new("undo", null, false, "put back the config as it was before setup (only if unchanged since)"),
                new("containerd-version", null, true, "the containerd the config is for (default: `containerd --version`)", "V"),
                new("options-file", null, true, "containerd 1.6 only: where the carried runc options go (default /etc/diffkeeper/runc.toml)", "PATH"),
            ],
            ["diffkeeper setup containerd --dry-run", "diffkeeper setup containerd && systemctl restart containerd", "diffkeeper setup containerd --undo"],
            SetupVerb.Run, 1, 1),
        new("help", "diffkeeper help [COMMAND]", "Show the commands, or a command's usage, options, defaults and examples (the same as COMMAND --help).",
            [], ["diffkeeper help", "diffkeeper help export"], MetaVerbs.Help, 0, 1),
        new("completion", "diffkeeper completion bash|zsh|fish",
            "Print the shell completion script for bash, zsh or fish (the packages install all three). Recordings are completed from the store.",
            [], ["source <(diffkeeper completion bash)", "diffkeeper completion zsh > \"${fpath[1]}/_diffkeeper\"",
                 "diffkeeper completion fish > ~/.config/fish/completions/diffkeeper.fish"], MetaVerbs.Completion, 1, 1),
        new("man", "diffkeeper man --out DIR",
            "Write the manual pages: diffkeeper.1 (a section per command), diffkeeperd.8 and containerd-shim-diffkeeper-v1.8 (the packages install them).",
            [new("out", "o", true, "the directory to write the pages into (created if absent)", "DIR")],
            ["diffkeeper man --out /tmp/man && man -l /tmp/man/diffkeeper.1"], MetaVerbs.Man, 0, 0),
        new("__complete", "diffkeeper __complete recordings|spec", "Completion helper (hidden).", [], [], MetaVerbs.Complete, 1, 1, Hidden: true),
    }.ToDictionary(v => v.Name);

    /// <summary>The verb table, for help, completions and man pages.</summary>
    public static IReadOnlyDictionary<string, VerbSpec> All => Table;

    public static int Dispatch(string[] args, Stream stdout)
    {
        var p = ArgParser.Parse(RawArguments.Recover(args), Table);
        var ctx = new CliContext(p, stdout);
        if (p.Flags.Contains("version")) { ctx.Out.Line(Version); return 0; }
        if (p.Verb == null)
        {
            if (p.Flags.Contains("help")) { ctx.Out.Line(HelpText.General(Table.Values)); return 0; }
            Console.Error.WriteLine(HelpText.General(Table.Values));
            return 2;
        }
        var verb = Table[p.Verb];
        if (p.Flags.Contains("help")) { ctx.Out.Line(HelpText.Verb(verb)); return 0; }
        if (p.Positionals.Count < verb.MinPositionals || p.Positionals.Count > verb.MaxPositionals)
            throw new UsageException($"{p.Verb}: {(p.Positionals.Count < verb.MinPositionals ? "missing arguments" : "too many arguments")}; usage: {verb.Usage} (see diffkeeper {p.Verb} --help)");
        return verb.Run(p, ctx);
    }
}
