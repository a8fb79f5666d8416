using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Tests.Support;
using DiffKeeper.Ttrpc;
using Xunit;
using Status = DiffKeeper.Shim.Protos.TaskTypes.Status;

namespace DiffKeeper.Shim.Tests.Processes;

/// <summary>
/// The init and exec state machines, on the transitions that need no runc run (exits, refusals by state, Delete
/// of an exec). The reaper is never started, so a path that wrongly ran runc would hang: every call is bounded.
/// </summary>
public class ProcessStateMachineTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);
    private static readonly StdioPaths NoStdio = new("", "", "", false);
    private readonly TempDirectory _bundle = new();

    private InitProcess NewInit(int pid = 1000) =>
        new("c1", NoStdio, new RuncCommand(RuncSettings.For(_bundle.Path, "ns", "runc", _bundle.Combine("root"), false), new Reaper()),
            io: null!, pid);

    private static ExecProcess NewExec(Func<Status>? initStatus = null) =>
        new("e1", NoStdio, """{"args":["true"],"cwd":"/"}"""u8.ToArray(), initStatus ?? (() => Status.Running));

    public void Dispose() => _bundle.Dispose();

    [Fact]
    public void Init_starts_created_with_its_pid()
    {
        var init = NewInit(1234);
        Assert.Equal(ProcessState.Created, init.State);
        var state = init.ToStateResponse("/b");
        Assert.Equal(Status.Created, state.Status);
        Assert.Equal(1234u, state.Pid);
        Assert.Equal("c1", state.Id);
        Assert.Equal("/b", state.Bundle);
        Assert.False(init.Exited.IsCompleted);
    }

    [Fact]
    public void Init_exit_is_handed_to_the_container_then_recorded_once()
    {
        var init = NewInit();
        ProcessExit? observed = null;
        init.ExitObserved = e => observed = e;
        var exit = new ProcessExit(1000, 137, new DateTime(2026, 11, 23, 23, 0, 0, DateTimeKind.Utc));

        init.OnExit(exit);
        Assert.Equal(exit, observed);
        Assert.Equal(ProcessState.Created, init.State); // the container decides when the exit is final (event order)

        Assert.True(init.SetExited(exit));
        Assert.False(init.SetExited(exit with { Status = 1 }));
        Assert.Equal(ProcessState.Stopped, init.State);
        Assert.True(init.Exited.IsCompleted);
        var state = init.ToStateResponse("/b");
        Assert.Equal(Status.Stopped, state.Status);
        Assert.Equal(137u, state.ExitStatus);
        Assert.Equal(exit.ExitedAt, state.ExitedAt.ToDateTime());
        var delete = init.ToDeleteResponse();
        Assert.Equal(137u, delete.ExitStatus);
        Assert.Equal(1000u, delete.Pid);
    }

    [Fact]
    public async Task Stopped_init_refuses_start_pause_resume_update_with_runc_shim_texts()
    {
        var init = NewInit();
        init.SetExited(new ProcessExit(1000, 0, DateTime.UtcNow));

        await AssertUnknown("cannot start a stopped process", () => init.StartAsync(() => { }));
        await AssertUnknown("cannot pause a stopped container", init.PauseAsync);
        await AssertUnknown("cannot resume a stopped container", init.ResumeAsync);
        await AssertUnknown("cannot update a stopped container", () => init.UpdateAsync("{}"u8.ToArray()));
        Assert.Equal(ProcessState.Stopped, init.State);
    }

    [Fact]
    public async Task Created_init_refuses_pause_and_resume()
    {
        var init = NewInit();
        await AssertUnknown("cannot pause task in created state", init.PauseAsync);
        await AssertUnknown("cannot resume task in created state", init.ResumeAsync);
        Assert.Equal(ProcessState.Created, init.State);
    }

    [Fact]
    public void Never_run_process_reports_status_zero_and_go_zero_time()
    {
        var delete = NewExec().ToDeleteResponse();
        Assert.Equal(0u, delete.ExitStatus);
        Assert.Equal(-62135596800L, delete.ExitedAt.Seconds); // 0001-01-01T00:00:00Z, Go's zero time
    }

    [Fact]
    public void Exec_that_never_started_cannot_be_killed()
    {
        var e = Assert.Throws<TtrpcException>(() => NewExec().Kill(9));
        Assert.Equal(TtrpcStatusCode.FailedPrecondition, e.Code);
    }

    [Fact]
    public void Exited_exec_kill_is_NotFound_process_already_finished()
    {
        var exec = NewExec();
        Assert.True(exec.OnExit(new ProcessExit(2000, 3, DateTime.UtcNow)));
        Assert.False(exec.OnExit(new ProcessExit(2000, 4, DateTime.UtcNow)));
        Assert.Equal(3, exec.ExitStatus);
        var e = Assert.Throws<TtrpcException>(() => exec.Kill(9));
        Assert.Equal(TtrpcStatusCode.NotFound, e.Code);
        Assert.Contains("process already finished", e.Message);
    }

    [Fact]
    public async Task Exec_delete_removes_its_pid_file_and_a_second_delete_is_NotFound()
    {
        var exec = NewExec();
        exec.OnExit(new ProcessExit(2001, 0, DateTime.UtcNow));
        var pidFile = _bundle.Combine("e1.pid");
        File.WriteAllText(pidFile, "2001");

        await exec.DeleteAsync(_bundle.Path).WaitAsync(Bound);

        Assert.Equal(ProcessState.Deleted, exec.State);
        Assert.False(File.Exists(pidFile));
        Assert.True(exec.Exited.IsCompleted);
        var e = await Assert.ThrowsAsync<TtrpcException>(() => exec.DeleteAsync(_bundle.Path).WaitAsync(Bound));
        Assert.Equal(TtrpcStatusCode.NotFound, e.Code);
        Assert.Throws<TtrpcException>(() => exec.Kill(9));
    }

    [Fact]
    public async Task Created_exec_can_be_deleted_and_releases_waiters()
    {
        var exec = NewExec();
        var waiter = exec.Exited;
        await exec.DeleteAsync(_bundle.Path).WaitAsync(Bound);
        Assert.True(waiter.IsCompleted);
        Assert.Equal(Status.Unknown, exec.ReportedStatus);
    }

    private static async Task AssertUnknown(string message, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<TtrpcException>(() => call().WaitAsync(Bound));
        Assert.Equal(TtrpcStatusCode.Unknown, e.Code);
        Assert.Contains(message, e.Message);
    }
}
