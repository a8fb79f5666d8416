using DiffKeeper.Shim.Processes;
using Xunit;

namespace DiffKeeper.Shim.Tests.Processes;

/// <summary>Exits reach the owner of the pid, including exits that happen before the pid is claimed.</summary>
public class ExitRouterTests
{
    [Fact]
    public void Exit_after_claim_goes_to_the_owner_once()
    {
        var router = new ExitRouter();
        var seen = new List<ProcessExit>();
        router.Claim(100, seen.Add);
        var exit = new ProcessExit(100, 3, DateTime.UtcNow);
        router.Dispatch(exit);
        router.Dispatch(exit with { Status = 9 }); // a later process with the same pid number: not this owner's
        Assert.Equal([exit], seen);
    }

    [Fact]
    public void Exit_before_claim_is_kept_and_delivered_on_claim()
    {
        var router = new ExitRouter();
        var early = new ProcessExit(200, 137, DateTime.UtcNow);
        router.Dispatch(early);
        ProcessExit? seen = null;
        router.Claim(200, e => seen = e);
        Assert.Equal(early, seen);
    }

    [Fact]
    public void Early_exit_is_delivered_only_once()
    {
        var router = new ExitRouter();
        router.Dispatch(new ProcessExit(201, 0, DateTime.UtcNow));
        int first = 0, second = 0;
        router.Claim(201, _ => first++);
        router.Claim(201, _ => second++);
        Assert.Equal(1, first);
        Assert.Equal(0, second);
    }

    [Fact]
    public void Stale_early_exit_belongs_to_an_earlier_process()
    {
        var router = new ExitRouter();
        router.Dispatch(new ProcessExit(300, 1, DateTime.UtcNow - TimeSpan.FromMinutes(5)));
        var seen = new List<ProcessExit>();
        router.Claim(300, seen.Add);
        Assert.Empty(seen);
        var real = new ProcessExit(300, 0, DateTime.UtcNow);
        router.Dispatch(real);
        Assert.Equal([real], seen);
    }

    [Fact]
    public void Released_pid_gets_no_exit()
    {
        var router = new ExitRouter();
        var seen = new List<ProcessExit>();
        router.Claim(400, seen.Add);
        router.Release(400);
        router.Dispatch(new ProcessExit(400, 0, DateTime.UtcNow));
        Assert.Empty(seen);
    }

    [Fact]
    public void Unclaimed_exits_are_bounded()
    {
        var router = new ExitRouter();
        var now = DateTime.UtcNow;
        for (int pid = 1; pid <= 5000; pid++) router.Dispatch(new ProcessExit(pid, 0, now));
        int oldest = 0, newest = 0;
        router.Claim(1, _ => oldest++);
        router.Claim(5000, _ => newest++);
        Assert.Equal(0, oldest);   // evicted
        Assert.Equal(1, newest);
    }
}
