using DiffKeeper.Cli.Tests.Native;
using Xunit;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>Prerequisites: skip when missing, unless DIFFKEEPER_REQUIRE_INTEGRATION=1 asks to fail instead.</summary>
public static class Env
{
    private static bool RequireAll => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void Require(bool condition, string what)
    {
        if (condition) return;
        if (RequireAll) throw new Xunit.Sdk.XunitException($"prerequisite missing (DIFFKEEPER_REQUIRE_INTEGRATION=1): {what}");
        Skip.If(true, what);
    }

    public static void RequireRoot() => Require(Posix.IsRoot, "needs root (whiteouts are device nodes; trusted.* xattrs; chown)");

    public static bool HasTool(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(System.IO.Path.Combine(d, name)));

    /// <summary>A seed from DIFFKEEPER_TEST_SEED (to replay a failure) or the given default.</summary>
    public static int Seed(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("DIFFKEEPER_TEST_SEED"), out var s) ? s : fallback;
}
