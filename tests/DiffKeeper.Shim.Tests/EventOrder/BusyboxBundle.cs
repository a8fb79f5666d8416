using System.Diagnostics;
using System.Text.Json.Nodes;

namespace DiffKeeper.Shim.Tests.EventOrder;

/// <summary>
/// A runnable OCI bundle without containerd: <c>runc spec</c>'s default config, a rootfs of busybox-static and
/// its applet links, and the process to run. The rootfs is a plain directory (no Create mounts).
/// </summary>
internal static class BusyboxBundle
{
    public const string BusyboxPath = "/usr/bin/busybox"; // Debian's busybox-static
    private static readonly string[] Applets = ["sh", "sleep", "head", "tr", "true", "cat"];

    public static bool Available => File.Exists(BusyboxPath) && FindRunc() != null;

    public static string? FindRunc() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
        .Select(dir => Path.Combine(dir, "runc")).FirstOrDefault(File.Exists);

    public static void Prepare(string bundle, string[] args, long? memoryLimit = null)
    {
        var bin = Path.Combine(bundle, "rootfs", "bin");
        Directory.CreateDirectory(bin);
        File.Copy(BusyboxPath, Path.Combine(bin, "busybox"));
        foreach (var applet in Applets) File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");

        File.Delete(Path.Combine(bundle, "config.json"));
        using (var spec = Process.Start(new ProcessStartInfo("runc") { ArgumentList = { "spec" }, WorkingDirectory = bundle })!)
        {
            spec.WaitForExit(10_000);
            if (spec.ExitCode != 0) throw new InvalidOperationException("runc spec failed");
        }
        var path = Path.Combine(bundle, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var process = config["process"]!.AsObject();
        process["terminal"] = false;
        process["args"] = new JsonArray(args.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray());
        process["env"] = new JsonArray(JsonValue.Create("PATH=/bin"));
        if (memoryLimit is { } limit)
        {
            var linux = config["linux"]!.AsObject();
            linux["resources"] = new JsonObject { ["memory"] = new JsonObject { ["limit"] = limit, ["swap"] = limit } };
        }
        File.WriteAllText(path, config.ToJsonString());
    }

    /// <summary>The runtime-spec Process an Exec request carries (JSON in an Any).</summary>
    public static Google.Protobuf.WellKnownTypes.Any ExecSpec(params string[] args)
    {
        var process = new JsonObject
        {
            ["args"] = new JsonArray(args.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            ["cwd"] = "/",
            ["env"] = new JsonArray(JsonValue.Create("PATH=/bin")),
            ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
        };
        return new Google.Protobuf.WellKnownTypes.Any
        {
            TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process",
            Value = Google.Protobuf.ByteString.CopyFromUtf8(process.ToJsonString()),
        };
    }
}
