using System.Text.Json;
using DiffKeeper.Shim.Mounts;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// A diagnostic hook, on when <c>DIFFKEEPER_SHIM_HOOK_LOG=&lt;file&gt;</c> is in the shim's (containerd's)
/// environment: appends one JSON line per hook call with what the recorder would see at that moment — whether the
/// rootfs is still mounted and the upperdir still exists — so tests can pin the recorder's safe window.
/// </summary>
public sealed class HookLogRecorderHook(string path) : IRecorderHook
{
    public const string EnvironmentVariable = "DIFFKEEPER_SHIM_HOOK_LOG";
    private static readonly object Gate = new();

    public static IRecorderHook? FromEnvironment()
    {
        var path = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrEmpty(path) ? null : new HookLogRecorderHook(path);
    }

    public Task OnCreatedAsync(ContainerRecordInfo container, CancellationToken ct) => Write("created", container, null);

    public Task OnExitedBeforeUnmountAsync(ContainerRecordInfo container, int exitStatus, CancellationToken ct) =>
        Write("exited-before-unmount", container, exitStatus);

    public Task OnDeletedAsync(ContainerRecordInfo container, CancellationToken ct) => Write("deleted", container, null);

    private Task Write(string hook, ContainerRecordInfo c, int? exitStatus)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("hook", hook);
            json.WriteString("time", DateTime.UtcNow);
            json.WriteNumber("shimPid", Environment.ProcessId);
            json.WriteString("namespace", c.Namespace);
            json.WriteString("id", c.Id);
            json.WriteString("bundle", c.Bundle);
            json.WriteNumber("pid", c.Pid);
            if (exitStatus.HasValue) json.WriteNumber("exitStatus", exitStatus.Value);
            json.WriteBoolean("rootfsMounted", RootfsMounter.IsMountPoint(c.RootfsPath));
            if (c.UpperDir != null)
            {
                json.WriteString("upperDir", c.UpperDir);
                json.WriteBoolean("upperDirExists", Directory.Exists(c.UpperDir));
            }
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        lock (Gate)
        {
            using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            file.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        return Task.CompletedTask;
    }
}
