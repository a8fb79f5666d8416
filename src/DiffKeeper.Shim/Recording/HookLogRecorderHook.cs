using System.Text.Json;
using DiffKeeper.Shim.Mounts;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// A diagnostic hook, on when <c>DIFFKEEPER_SHIM_HOOK_LOG=&lt;file&gt;</c> is in the shim's (containerd's)
/// environment: appends one JSON line per hook call with what the recorder would see at that moment — whether the
/// rootfs is still mounted, the upperdir still exists and which names are at its top — so tests can pin the
/// recorder's safe window (e.g. a file the container wrote is still there to be recorded).
/// </summary>
internal sealed class HookLogRecorderHook(string path) : IRecorderHook
{
    public const string EnvironmentVariable = "DIFFKEEPER_SHIM_HOOK_LOG";
    /// <summary>Enough to find a test's marker file; a diagnostic line must stay small whatever the container wrote.</summary>
    private const int MaxUpperDirEntries = 64;
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
                bool exists = Directory.Exists(c.UpperDir);
                json.WriteBoolean("upperDirExists", exists);
                if (exists) WriteTopEntries(json, c.UpperDir);
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

    private static void WriteTopEntries(Utf8JsonWriter json, string directory)
    {
        json.WriteStartArray("upperDirEntries");
        try
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(directory).Take(MaxUpperDirEntries))
                json.WriteStringValue(Path.GetFileName(entry));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Removed between the check and the listing: the entries seen so far are what there was.
        }
        json.WriteEndArray();
    }
}
