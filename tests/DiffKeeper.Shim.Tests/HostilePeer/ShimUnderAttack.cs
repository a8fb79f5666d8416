using DiffKeeper.Shim.Protos.Task;
using DiffKeeper.Ttrpc;
using Xunit;

namespace DiffKeeper.Shim.Tests.HostilePeer;

/// <summary>One real shim shared by the hostile-peer tests of a class; started on first use, cleaned up after.</summary>
public sealed class ShimUnderAttack : IAsyncLifetime
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private RunningShim? _shim;

    internal async Task<RunningShim> GetAsync()
    {
        await _gate.WaitAsync();
        try
        {
            return _shim ??= await RunningShim.StartAsync();
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_shim != null) await _shim.DisposeAsync();
    }
}

/// <summary>What a well-behaved client (containerd) must still get from the shim, whatever else is going on.</summary>
internal static class WellBehavedClient
{
    public static readonly TimeSpan CallBound = TimeSpan.FromSeconds(3);

    public static async Task AssertServedAsync(RunningShim shim)
    {
        Assert.True(shim.IsAlive, "the shim process died\n" + shim.Log);
        await using var client = await shim.ConnectAsync();
        var connect = await client.CallAsync(RunningShim.TaskService, "Connect", new ConnectRequest { Id = shim.Id },
            ConnectResponse.Parser, timeout: CallBound);
        Assert.Equal(shim.Pid, (int)connect.ShimPid);
        Assert.Equal(0u, connect.TaskPid);
        var e = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(RunningShim.TaskService, "State",
            new StateRequest { Id = "no-such-container" }, StateResponse.Parser, timeout: CallBound));
        Assert.Equal(TtrpcStatusCode.NotFound, e.Code);
        Assert.Contains("container not created", e.Message);
    }
}
