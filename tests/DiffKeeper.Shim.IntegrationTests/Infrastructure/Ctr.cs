namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>`ctr` against a private containerd, in the tests' namespace.</summary>
public static class Ctr
{
    public static Task<CommandResult> CtrAsync(this PrivateContainerd containerd, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null) =>
        ExternalCommand.RunAsync("ctr", containerd.CtrArgs([.. args]), timeout, stdin);

    public static Task<CommandResult> CtrAsync(this PrivateContainerd containerd, params string[] args) => containerd.CtrAsync(args, null);
}
