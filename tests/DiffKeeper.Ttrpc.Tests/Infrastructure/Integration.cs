namespace DiffKeeper.Ttrpc.Tests.Infrastructure;

/// <summary>
/// Prerequisites of tests that need the real system. Missing ones skip the test, unless
/// DIFFKEEPER_REQUIRE_INTEGRATION=1 (CI), where a skip would hide a broken setup: then they fail it.
/// </summary>
public static class Integration
{
    public static bool Required => Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1";

    public static void Require(bool present, string what)
    {
        if (present) return;
        if (Required) Assert.Fail($"integration prerequisite missing: {what} (DIFFKEEPER_REQUIRE_INTEGRATION=1)");
        Skip.If(true, $"needs {what}");
    }

    public static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
