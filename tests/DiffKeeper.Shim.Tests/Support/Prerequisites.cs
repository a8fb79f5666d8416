using Xunit;

namespace DiffKeeper.Shim.Tests.Support;

/// <summary>
/// Tests that need root (the shim binds under /run/containerd/s) skip without it, unless the run demands them
/// (<c>DIFFKEEPER_REQUIRE_INTEGRATION=1</c>, as CI sets): then a missing prerequisite is a failure.
/// </summary>
internal static class Prerequisites
{
    public static bool Required => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void RequireRoot(string why = "needs root: the shim binds its socket in /run/containerd/s")
    {
        if (Posix.geteuid() == 0) return;
        if (Required) throw new InvalidOperationException(why + " (DIFFKEEPER_REQUIRE_INTEGRATION=1)");
        Skip.If(true, why);
    }
}
