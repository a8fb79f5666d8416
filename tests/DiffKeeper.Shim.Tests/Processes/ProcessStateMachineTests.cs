using DiffKeeper.Shim.Io;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Runc;
using DiffKeeper.Shim.Service;
using DiffKeeper.Ttrpc;
using Xunit;

namespace DiffKeeper.Shim.Tests.Processes;

/// <summary>
/// The init and exec state machines, on the transitions that need no runc run (exits, refusals by state, Delete
/// of an exec). The reaper is never started, so a path that wrongly ran runc would hang: every call is bounded.
/// </summary>
public class ProcessStateMachineTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);
    private static readonly StdioPaths NoStdio = new("", "", "", false);
    private readonly TempDir _bundle = new("dks-");

    private InitProcess NewInit(int pid = 1000) =>
        new("c1", NoStdio, new RuncCommand(RuncSettings.For(_bundle.Path, "ns", "runc", _bundle.Sub("root"), false), new Reaper()),
            io: null!, pid);

    private static ExecProcess NewExec(Func<ProcessState>? initState = null) =>
        new("e1", NoStdio, """{"args":["true"],"cwd":"/"}"""u8.ToArray(), initState ?? (() => ProcessState.Running));

    public void Dispose() => _bundle.Dispose();

    [Fact]
    public void Init_starts_created_with_its_pid()
    {
        var init = NewInit(1234);
        Assert.Equal(ProcessState.Created, init.State);
        var state = init.Snapshot();
        Assert.Equal(ProcessState.Created, state.State);
        Assert.Equal(1234, state.Pid);
        Assert.Equal("c1", state.Id);
        Assert.False(init.Exited.IsCompleted);
    }

    [Fact]
    public void Init_exit_is_recorded_once()
    {
        var init = NewInit();
        var exit = new ProcessExit(1000, 137, new DateTime(2026, 11, 23, 23, 0, 0, DateTimeKind.Utc));

        Assert.True(init.SetExited(exit));
        Assert.False(init.SetExited(exit with { Status = 1 }));
        Assert.Equal(ProcessState.Stopped, init.State);
        Assert.True(init.Exited.IsCompleted);
        var state = init.Snapshot();
        Assert.Equal(ProcessState.Stopped, state.State);
        Assert.Equal(137, state.ExitStatus);
        Assert.Equal(exit.ExitedAt, state.ExitedAt);
        Assert.Equal(1000, state.Pid);
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
        var never = NewExec().Snapshot();
        Assert.Equal(0, never.ExitStatus);
        Assert.Null(never.ExitedAt);
        Assert.Equal(-62135596800L, ProtoTime.From(never.ExitedAt).Seconds); // 0001-01-01T00:00:00Z, Go's zero time
    }

    [Fact]
    public void Exec_that_never_started_cannot_be_killed()
    {
        var e = Assert.Throws<ProcessError>(() => NewExec().Kill(9));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(TtrpcStatusCode.FailedPrecondition, TaskService.ToTtrpc(e).Code);
        Assert.Equal("process not created: failed precondition", TaskService.ToTtrpc(e).Message);
    }

    [Fact]
    public void Exited_exec_kill_is_NotFound_process_already_finished()
    {
        var exec = NewExec();
        Assert.True(exec.OnExit(new ProcessExit(2000, 3, DateTime.UtcNow)));
        Assert.False(exec.OnExit(new ProcessExit(2000, 4, DateTime.UtcNow)));
        Assert.Equal(3, exec.ExitStatus);
        var e = TaskService.ToTtrpc(Assert.Throws<ProcessError>(() => exec.Kill(9)));
        Assert.Equal(TtrpcStatusCode.NotFound, e.Code);
        Assert.Equal("process already finished: not found", e.Message);
    }

    [Fact]
    public async Task Exec_delete_removes_its_pid_file_and_a_second_delete_is_NotFound()
    {
        var exec = NewExec();
        exec.OnExit(new ProcessExit(2001, 0, DateTime.UtcNow));
        var pidFile = _bundle.Sub("e1.pid");
        File.WriteAllText(pidFile, "2001");

        await exec.DeleteAsync(new BundlePaths(_bundle.Path)).WaitAsync(Bound);

        Assert.Equal(ProcessState.Deleted, exec.State);
        Assert.False(File.Exists(pidFile));
        Assert.True(exec.Exited.IsCompleted);
        var e = await Assert.ThrowsAsync<ProcessError>(() => exec.DeleteAsync(new BundlePaths(_bundle.Path)).WaitAsync(Bound));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Throws<ProcessError>(() => exec.Kill(9));
    }

    [Fact]
    public async Task Created_exec_can_be_deleted_and_releases_waiters()
    {
        var exec = NewExec();
        var waiter = exec.Exited;
        await exec.DeleteAsync(new BundlePaths(_bundle.Path)).WaitAsync(Bound);
        Assert.True(waiter.IsCompleted);
        Assert.Equal(ProcessState.Deleted, exec.ReportedState);
        Assert.Equal(DiffKeeper.Shim.Protos.TaskTypes.Status.Unknown, TaskService.ToStatus(exec.ReportedState));
    }

    [Fact]
    public void The_moves_table_gives_every_kind_operation_and_state_at_most_one_row()
    {
        foreach (var kind in Enum.GetValues<ProcessKind>())
        foreach (var op in Enum.GetValues<ProcessOperation>())
        foreach (var state in Enum.GetValues<ProcessState>())
        {
            var rows = ProcessMoves.Rows.Count(m => m.Operation == op && (m.Only == null || m.Only == kind) && m.From.Contains(state));
            Assert.True(rows <= 1, $"{kind} {op} in {state}: {rows} rows");
        }
    }

    [Fact]
    public void Only_start_pause_resume_delete_and_exit_change_state_and_no_refusal_changes_it()
    {
        foreach (var m in ProcessMoves.Rows)
        {
            if (m.Refusal != null) Assert.True(m.During == null && m.To == null, $"{m.Operation} refuses and moves");
            else Assert.Contains(m.Operation, new[] { ProcessOperation.Start, ProcessOperation.Pause, ProcessOperation.Resume, ProcessOperation.Delete, ProcessOperation.Exit });
        }
        // A deleted process accepts nothing but a (late) exit report, which changes nothing.
        foreach (var kind in Enum.GetValues<ProcessKind>())
        foreach (var op in new[] { ProcessOperation.Start, ProcessOperation.Kill, ProcessOperation.Resize, ProcessOperation.Delete })
            Assert.NotNull(ProcessMoves.Find(kind, op, ProcessState.Deleted).Refusal);
        Assert.Null(ProcessMoves.Find(ProcessKind.Init, ProcessOperation.Exit, ProcessState.Deleted).To);
    }

    private static async Task AssertUnknown(string message, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<ProcessError>(() => call().WaitAsync(Bound));
        Assert.Equal(ErrorKind.Unknown, e.Kind);
        Assert.Equal(message, TaskService.ToTtrpc(e).Message);
    }
}
