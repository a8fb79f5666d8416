using Xunit;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>The runtimes every checklist test runs against; CI runs both.</summary>
public static class ShimRuntimes
{
    public const string Runc = "io.containerd.runc.v2";
    public const string DiffKeeper = "io.containerd.diffkeeper.v1";

    /// <summary>Theory data: both runtimes. DIFFKEEPER_TEST_RUNTIMES (comma separated) narrows it for local runs.</summary>
    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var r in Selected) data.Add(r);
            return data;
        }
    }

    public static IReadOnlyList<string> Selected =>
        Environment.GetEnvironmentVariable("DIFFKEEPER_TEST_RUNTIMES") is { Length: > 0 } s
            ? s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : new[] { Runc, DiffKeeper };

    /// <summary>containerd's name resolution: the last two dotted parts give containerd-shim-&lt;a&gt;-&lt;b&gt;.</summary>
    public static string BinaryName(string runtime)
    {
        var parts = runtime.Split('.');
        return $"containerd-shim-{parts[^2]}-{parts[^1]}";
    }

    /// <summary>Short tag used in container ids so that ids differ per runtime.</summary>
    public static string Tag(string runtime) => runtime == Runc ? "rc" : runtime == DiffKeeper ? "dk" : "xx";
}
