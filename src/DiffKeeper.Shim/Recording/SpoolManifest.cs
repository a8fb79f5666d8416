using System.Globalization;
using System.Text.Json;
using DiffKeeper.Recorder.Api;
using DiffKeeper.Shim.Native;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// The spool entry's <c>manifest.json</c> (docs/recorder.md, "The spool"), written last and atomically: a temp file,
/// then a rename. An entry without it is incomplete and the daemon removes it. Durability: either fsync before the
/// rename, or <see cref="Sync"/> just after it (the serving shim, off Delete's path); in the second case a machine
/// crash in those milliseconds can leave an empty manifest, which a reader must treat as incomplete.
/// </summary>
internal sealed class SpoolManifest
{
    public const string FileName = "manifest.json";

    public required string Namespace { get; init; }
    public required string Id { get; init; }
    public ulong RecordingId { get; init; }
    public DateTime? CreatedAt { get; init; }
    public required DateTime ExitedAt { get; init; }
    public int ExitStatus { get; init; }
    public string? UpperDir { get; init; }
    public string RootfsType { get; init; } = "";
    /// <summary>hardlink, reflink, copy, or none (no overlay upper dir to freeze).</summary>
    public required string Freeze { get; init; }
    public List<string> FreezeErrors { get; init; } = new();
    public FreezeResult? Result { get; init; }
    public ContainerInfo? Container { get; init; }
    public IReadOnlyList<LifecycleEvent> Events { get; init; } = Array.Empty<LifecycleEvent>();
    /// <summary>Who froze: "shim" (Delete(init)) or "delete" (the subcommand, after the shim died).</summary>
    public string FrozenBy { get; init; } = "shim";
    /// <summary>Lifecycle events this shim dropped because the daemon did not keep up (a gap the daemon should show).</summary>
    public long EventsDropped { get; init; }

    public void WriteTo(string entry, bool syncBeforeRename)
    {
        var path = Path.Combine(entry, FileName);
        var tmp = Path.Combine(entry, "." + FileName + ".tmp");
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = false }))
                Write(json);
            file.WriteByte((byte)'\n');
            file.Flush(flushToDisk: syncBeforeRename);
        }
        File.Move(tmp, path, overwrite: false);
    }

    /// <summary>fsync the manifest (on ext4 this commits the journal, with the freeze's links and directories).</summary>
    public static void Sync(string entry)
    {
        try
        {
            using var file = new FileStream(Path.Combine(entry, FileName), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            file.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Diagnostics.ShimLog.Warn($"recorder: syncing {entry}: {e.Message}");
        }
    }

    private void Write(Utf8JsonWriter j)
    {
        j.WriteStartObject();
        j.WriteNumber("version", 1);
        j.WriteString("namespace", Namespace);
        j.WriteString("id", Id);
        if (RecordingId != 0) j.WriteString("recording_id", RecordingId.ToString("x16", CultureInfo.InvariantCulture));
        else j.WriteNull("recording_id");
        WriteTime(j, "created_at", CreatedAt);
        WriteTime(j, "exited_at", ExitedAt);
        j.WriteNumber("exit_status", ExitStatus);
        if (UpperDir != null) j.WriteString("upper_dir", UpperDir); else j.WriteNull("upper_dir");
        j.WriteString("rootfs_type", RootfsType);
        j.WriteString("freeze", Freeze);
        j.WriteStartArray("freeze_errors");
        foreach (var e in FreezeErrors) j.WriteStringValue(e);
        if (Result != null) foreach (var e in Result.Errors) j.WriteStringValue(e);
        j.WriteEndArray();
        // Beyond the documented fields (readers ignore unknown ones): how complete the freeze is, and what it cost.
        j.WriteBoolean("freeze_complete", Result?.Complete ?? FreezeErrors.Count == 0);
        j.WriteString("frozen_by", FrozenBy);
        j.WriteNumber("events_dropped", EventsDropped);
        if (Result != null)
        {
            j.WriteStartObject("freeze_stats");
            j.WriteNumber("linked", Result.Linked);
            j.WriteNumber("reflinked", Result.Reflinked);
            j.WriteNumber("copied", Result.Copied);
            j.WriteNumber("directories", Result.Directories);
            j.WriteNumber("bytes_copied", Result.BytesCopied);
            j.WriteNumber("errors", Result.ErrorCount);
            j.WriteNumber("elapsed_ms", Math.Round(Result.Elapsed.TotalMilliseconds, 3));
            if (Result.FallbackReason != null) j.WriteString("fallback_reason", Result.FallbackReason);
            j.WriteEndObject();
        }
        if (Container != null)
        {
            j.WritePropertyName("container");
            WriteContainer(j, Container);
        }
        else
        {
            j.WriteNull("container");
        }
        j.WriteStartArray("events");
        foreach (var e in Events)
        {
            j.WriteStartObject();
            j.WriteString("kind", e.Kind);
            WriteTime(j, "time", e.Time);
            if (e.Pid != 0) j.WriteNumber("pid", e.Pid);
            if (e.ExecId.Length > 0) j.WriteString("exec_id", e.ExecId);
            if (e.Kind is "exit" or "delete") j.WriteNumber("exit_status", e.ExitStatus);
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    /// <summary>ContainerInfo in protobuf's JSON mapping (lowerCamelCase names, uint64 as a string), by hand:
    /// Google.Protobuf's JsonFormatter works by reflection, which the Native AOT shim avoids.</summary>
    private static void WriteContainer(Utf8JsonWriter j, ContainerInfo c)
    {
        j.WriteStartObject();
        j.WriteString("namespace", c.Namespace);
        j.WriteString("id", c.Id);
        j.WriteString("bundle", c.Bundle);
        j.WriteString("rootfs", c.Rootfs);
        j.WriteString("upperDir", c.UpperDir);
        j.WriteStartArray("lowerDirs");
        foreach (var l in c.LowerDirs) j.WriteStringValue(l);
        j.WriteEndArray();
        j.WriteString("workDir", c.WorkDir);
        j.WriteString("rootfsType", c.RootfsType);
        j.WriteNumber("initPid", c.InitPid);
        j.WriteString("mountNamespace", c.MountNamespace.ToString(CultureInfo.InvariantCulture));
        j.WriteString("cgroupPath", c.CgroupPath);
        j.WriteStartObject("annotations");
        foreach (var (k, v) in c.Annotations.OrderBy(p => p.Key, StringComparer.Ordinal)) j.WriteString(k, v);
        j.WriteEndObject();
        if (c.Process != null)
        {
            j.WriteStartObject("process");
            j.WriteStartArray("args");
            foreach (var a in c.Process.Args) j.WriteStringValue(a);
            j.WriteEndArray();
            j.WriteStartArray("envNames");
            foreach (var a in c.Process.EnvNames) j.WriteStringValue(a);
            j.WriteEndArray();
            j.WriteString("cwd", c.Process.Cwd);
            j.WriteNumber("uid", c.Process.Uid);
            j.WriteNumber("gid", c.Process.Gid);
            j.WriteBoolean("terminal", c.Process.Terminal);
            j.WriteEndObject();
        }
        j.WriteNumber("shimPid", c.ShimPid);
        j.WriteString("containerdAddress", c.ContainerdAddress);
        j.WriteEndObject();
    }

    private static void WriteTime(Utf8JsonWriter j, string name, DateTime? t)
    {
        if (t is { } v) j.WriteString(name, Rfc3339(v)); else j.WriteNull(name);
    }

    public static string Rfc3339(DateTime t) =>
        t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
}
