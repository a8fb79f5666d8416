using System.Text.Json;

namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>
/// Freezes an upper directory into a spool entry exactly as docs/recorder.md says the shim does:
/// &lt;spool&gt;/&lt;namespace&gt;/&lt;id&gt;-&lt;exit unix ns&gt;/upper (hard links: cp -al) and manifest.json written last,
/// atomically (temp + rename).
/// </summary>
public static class SpoolEntry
{
    public static string Freeze(string spool, string upper, ContainerInfo c, ulong? recordingId, DateTime createdAt, DateTime exitedAt, int status,
        IEnumerable<(string Kind, DateTime Time, int Pid)>? events = null, string freeze = "hardlink")
    {
        long exitNs = (exitedAt.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var entry = Path.Combine(spool, c.Namespace, $"{c.Id}-{exitNs}");
        Directory.CreateDirectory(entry);
        if (freeze != "none") Env.Run("cp", "-a", "--link", upper, Path.Combine(entry, "upper"));
        WriteManifest(entry, Manifest(c, recordingId, createdAt, exitedAt, status, events, freeze));
        return entry;
    }

    public static string Manifest(ContainerInfo c, ulong? recordingId, DateTime createdAt, DateTime exitedAt, int status,
        IEnumerable<(string Kind, DateTime Time, int Pid)>? events, string freeze)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("version", 1);
            w.WriteString("namespace", c.Namespace);
            w.WriteString("id", c.Id);
            if (recordingId is ulong id) w.WriteString("recording_id", id.ToString("x16")); else w.WriteNull("recording_id");
            w.WriteString("created_at", createdAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"));
            w.WriteString("exited_at", exitedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"));
            w.WriteNumber("exit_status", status);
            w.WriteString("upper_dir", c.UpperDir);
            w.WriteString("rootfs_type", c.RootfsType);
            w.WriteString("freeze", freeze);
            w.WriteStartArray("freeze_errors");
            w.WriteEndArray();
            w.WritePropertyName("container");
            w.WriteRawValue(Google.Protobuf.JsonFormatter.Default.Format(c));
            w.WriteStartArray("events");
            foreach (var (kind, time, pid) in events ?? [])
            {
                w.WriteStartObject();
                w.WriteString("kind", kind);
                w.WriteString("time", time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'"));
                w.WriteNumber("pid", pid);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    public static void WriteManifest(string entry, string json)
    {
        var tmp = Path.Combine(entry, ".manifest.json.tmp");
        File.WriteAllText(tmp, json);
        File.Move(tmp, Path.Combine(entry, "manifest.json"));
    }

    /// <summary>Waits until the daemon has ingested and removed the entry.</summary>
    public static void WaitGone(string entry, TimeSpan timeout, Func<string> log)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Directory.Exists(entry))
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"spool entry {entry} was not ingested within {timeout.TotalSeconds} s:\n{log()}");
            Thread.Sleep(100);
        }
    }
}
