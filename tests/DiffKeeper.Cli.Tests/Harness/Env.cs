namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>What the CLI tests ask of the machine beyond <see cref="Integration"/>, and their random seeds.</summary>
public static class Env
{
    public static void RequireRoot() => Integration.RequireRoot("needs root (whiteouts are device nodes; trusted.* xattrs; chown)");

    /// <summary>A seed from DIFFKEEPER_TEST_SEED (to replay a failure) or the given default.</summary>
    public static int Seed(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("DIFFKEEPER_TEST_SEED"), out var s) ? s : fallback;
}
