using DiffKeeper.Shim.Cli;
using DiffKeeper.Shim.Recording;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace DiffKeeper.Shim;

/// <summary>containerd-shim-diffkeeper-v1: the containerd runtime-v2 shim (see docs/shim-contract.md).</summary>
internal static class Program
{
    public const string Version = "0.1.0";

    public static async Task<int> Main(string[] args)
    {
        ShimFlags flags;
        try
        {
            flags = ShimFlags.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        if (flags.Help)
        {
            Console.WriteLine(ShimFlags.Usage);
            return 0;
        }

        if (flags.Version)
        {
            Console.WriteLine($"{Path.GetFileName(Environment.ProcessPath)}:");
            Console.WriteLine($"  Version:  {Version}");
            Console.WriteLine($"  Runtime:  .NET {Environment.Version}");
            return 0;
        }

        if (flags.Info)
        {
            // containerd 2.2+ asks once per runtime name; 1.x never does.
            var info = new DiffKeeper.Shim.Protos.Types.RuntimeInfo
            {
                Name = "io.containerd.diffkeeper.v1",
                Version = new DiffKeeper.Shim.Protos.Types.RuntimeVersion { Version = Version },
            };
            using var stdout = Console.OpenStandardOutput();
            Google.Protobuf.MessageExtensions.WriteTo(info, stdout);
            return 0;
        }

        try
        {
            // The recorder (Recording/RecorderHooks): built only where it is used, never for `start`.
            return flags.Action switch
            {
                "start" => StartCommand.Run(flags),
                "delete" => await DeleteCommand.RunAsync(flags, RecorderSettings.FromEnvironment()),
                null => await ServeCommand.RunAsync(flags, RecorderSettings.FromEnvironment()),
                _ => Usage(flags.Action),
            };
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"{flags.Action ?? "serve"}: {e.Message}");
            return 1;
        }
    }

    private static int Usage(string action)
    {
        Console.Error.WriteLine($"unknown action {action}; expected start, delete or none");
        return 2;
    }
}
