namespace DiffKeeper.Shim.Cli;

/// <summary>
/// The shim's command line, parsed like Go's flag package (what containerd and the Rust shim crate use):
/// single or double dash, <c>-k v</c> or <c>-k=v</c>, boolean flags without a value, parsing stops at the first
/// positional argument (the action: <c>start</c>, <c>delete</c>, or none to serve).
/// </summary>
internal sealed class ShimFlags
{
    public string Namespace { get; private set; } = "";
    public string Address { get; private set; } = "";
    public string PublishBinary { get; private set; } = "";
    public string Id { get; private set; } = "";
    public string Bundle { get; private set; } = "";
    public string Socket { get; private set; } = "";
    public bool Debug { get; private set; }
    public bool Version { get; private set; }
    public bool Info { get; private set; }
    public bool Help { get; private set; }
    public string? Action { get; private set; }

    private static readonly HashSet<string> BoolFlags = ["debug", "v", "info", "h", "help"];

    /// <summary>What -h prints (Go's flag package prints its flags the same way; containerd never passes -h).</summary>
    public const string Usage = """
        Usage of containerd-shim-diffkeeper-v1 (the containerd runtime io.containerd.diffkeeper.v1, started by containerd):
          containerd-shim-diffkeeper-v1 [flags] [start | delete]
          -namespace NS           the containerd namespace of the task
          -address SOCK           containerd's ttrpc socket
          -publish-binary PATH    the containerd binary to publish events with
          -id ID                  the task (container) id
          -bundle DIR             the OCI bundle directory
          -socket PATH            the socket to serve on
          -debug                  debug logging
          -v                      print the version and exit
          -info                   print the runtime info (protobuf) and exit
          -h                      print the flags and exit
        See containerd-shim-diffkeeper-v1(8) and diffkeeper(1).
        """;

    public static ShimFlags Parse(IReadOnlyList<string> args)
    {
        var flags = new ShimFlags();
        for (int i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--") { if (i + 1 < args.Count) flags.Action = args[i + 1]; break; }
            if (arg.Length < 2 || arg[0] != '-') { flags.Action = arg; break; }
            var name = arg.TrimStart('-');
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            if (BoolFlags.Contains(name))
            {
                bool on = value == null || value is "true" or "1" or "t" or "T" or "TRUE" or "True";
                switch (name)
                {
                    case "debug": flags.Debug = on; break;
                    case "v": flags.Version = on; break;
                    case "info": flags.Info = on; break;
                    case "h" or "help": flags.Help = on; break;
                }
                continue;
            }
            if (value == null)
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"flag needs an argument: -{name}");
                value = args[++i];
            }
            switch (name)
            {
                case "namespace": flags.Namespace = value; break;
                case "address": flags.Address = value; break;
                case "publish-binary": flags.PublishBinary = value; break;
                case "id": flags.Id = value; break;
                case "bundle": flags.Bundle = value; break;
                case "socket": flags.Socket = value; break;
                default: throw new ArgumentException($"flag provided but not defined: -{name}");
            }
        }
        return flags;
    }
}
