using Xunit;

namespace DiffKeeper.TestSupport;

/// <summary>
/// Prerequisites of tests that need the real system (root, containerd, the kernel, built binaries). A missing one
/// skips the test, unless DIFFKEEPER_REQUIRE_INTEGRATION=1 (CI, `make test`), where a skip would hide a broken setup:
/// then it fails the test.
/// </summary>
public static class Integration
{
    public static bool Required => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    /// <summary>Nothing when <paramref name="present"/>; otherwise skips, or fails under DIFFKEEPER_REQUIRE_INTEGRATION=1.</summary>
    public static void Require(bool present, string what)
    {
        if (present) return;
        if (Required) throw new Xunit.Sdk.XunitException($"integration prerequisite missing (DIFFKEEPER_REQUIRE_INTEGRATION=1): {what}");
        Skip.If(true, what);
    }

    public static bool IsRoot => Libc.IsRoot;

    public static void RequireRoot(string why) => Require(IsRoot, why);

    public static bool HasTool(string program) => FindOnPath(program) is not null;

    /// <summary>The first <paramref name="program"/> on PATH (and in /usr/sbin, /sbin, which a sudo PATH may lack).</summary>
    public static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/sbin").Append("/sbin")
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
