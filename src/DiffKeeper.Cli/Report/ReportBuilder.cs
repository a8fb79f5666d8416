using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli.Report;

/// <summary>Limits on what a report embeds; what they leave out is counted and said in the page.</summary>
public sealed class ReportOptions
{
    /// <summary>A file version larger than this keeps its size (and hash when cheap) but not its bytes.</summary>
    public long MaxFileBytes = 256 * 1024;
    /// <summary>
    /// Text embedded in total. 3 MiB keeps a 10,000-version report under the 5 MB: the metadata of 10,000
    /// versions is ≈0.5 MB and JSON escaping (\n, \") adds a few percent to the text (4 MiB made 5.5 MB).
    /// </summary>
    public long MaxTotalBytes = 3 * 1024 * 1024;
}

public sealed record ReportSummary(long Bytes, int Paths, int Versions, int Events, int Moments, int OmittedVersions, long OmittedBytes);

/// <summary>
/// Writes `diffkeeper report`: one HTML file holding the recording as JSON plus the front end (report/, bundled by
/// esbuild at build time and embedded in this binary), with no reference to anything outside the file.
/// Safety: the JSON is written with an encoder that escapes &lt; &gt; &amp; ' " (so no "&lt;/script" or "&lt;!--" can
/// appear inside the data block whatever the paths and contents hold), the page reads it with JSON.parse and puts
/// strings into the DOM as text only, and a Content-Security-Policy forbids any fetch, so a hostile recording can
/// neither run code nor make the page phone home.
/// </summary>
public static class ReportBuilder
{
    // Everything escaped that HTML could read as markup; all of Unicode kept literal (smaller than \uXXXX).
    private static readonly JsonWriterOptions JsonOpts = new() { Encoder = JavaScriptEncoder.Create(UnicodeRanges.All) };

    private const string Csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:";

    public static ReportSummary Write(RecordingStore store, RecordingInfo rec, ReportOptions opts, Stream output)
    {
        var data = new MemoryStream();
        var stats = WriteData(store, rec, opts, data);
        var js = SafeInline(Asset("report.js"), "</script");
        var css = SafeInline(Asset("report.css"), "</style");
        var title = HtmlText("DiffKeeper report — " + (rec.Name ?? rec.ContainerId ?? rec.IdText));
        long start = output.CanSeek ? output.Position : 0;
        var w = new StreamWriter(output, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        w.Write("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        w.Write($"<meta http-equiv=\"Content-Security-Policy\" content=\"{Csp}\">\n");
        w.Write("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"");
        w.Write(Verbs.Version);
        w.Write($"\">\n<title>{title}</title>\n<style>\n");
        w.Write(css);
        w.Write("\n</style></head>\n<body><noscript>This report needs JavaScript (it is inline; nothing is fetched).</noscript>\n");
        w.Write("<script type=\"application/json\" id=\"dk-data\">");
        w.Flush();
        data.Position = 0;
        data.CopyTo(output);
        w.Write("</script>\n<script>\n");
        w.Write(js);
        w.Write("\n</script>\n</body></html>\n");
        w.Flush();
        long bytes = output.CanSeek ? output.Position - start : 0;
        return stats with { Bytes = bytes };
    }

    private static string Asset(string name)
    {
        using var s = typeof(ReportBuilder).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"the report asset {name} is not embedded (build report/ with npm)");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <summary>The bundle is our own code, but a library string holding "&lt;/script" would end the element early.</summary>
    private static string SafeInline(string code, string closer)
    {
        int i = code.IndexOf(closer, StringComparison.OrdinalIgnoreCase);
        if (i < 0) return code;
        var sb = new StringBuilder(code.Length + 16);
        int last = 0;
        for (; i >= 0; i = code.IndexOf(closer, i + 1, StringComparison.OrdinalIgnoreCase))
        {
            sb.Append(code, last, i + 1).Append('\\');   // "<\/script": the same string to JS and CSS, no end tag to HTML
            last = i + 1;
        }
        return sb.Append(code, last, code.Length - last).ToString();
    }

    public static string HtmlText(string s) =>
        s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;").Replace("'", "&#39;");

    private sealed class Content
    {
        public int Index;
        public string? Hash;
        public string? Text;
        public string? Why;
    }

    private static ReportSummary WriteData(RecordingStore store, RecordingInfo rec, ReportOptions opts, Stream output)
    {
        var versions = store.ReadVersions(rec.Id, withChunks: true).ToList();
        var events = store.ReadEvents(rec.Id).ToList();

        // Paths: every path of a version or an event, in the order the CLI lists them.
        var pathSet = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var v in versions) pathSet.TryAdd(RawPath.Key(v.Path), v.Path);
        foreach (var e in events)
        {
            if (e.Path.Length > 0) pathSet.TryAdd(RawPath.Key(e.Path), e.Path);
        }
        var paths = pathSet.Values.ToList();
        paths.Sort(static (a, b) => RecordingState.ComparePaths(a, b));
        var pathIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < paths.Count; i++) pathIndex[RawPath.Key(paths[i])] = i;

        // Contents: one entry per distinct content (chunk list), newest first, so the limits keep the state
        // closest to the crash when they have to drop something.
        var contents = new Dictionary<string, Content>(StringComparer.Ordinal);
        var order = new List<Content>();
        long budget = opts.MaxTotalBytes;
        int omitted = 0, overFile = 0, overTotal = 0;
        long omittedBytes = 0;
        var versionContent = new int[versions.Count];
        var byTime = Enumerable.Range(0, versions.Count).OrderByDescending(i => versions[i].Time).ToList();
        foreach (int i in byTime)
        {
            var v = versions[i];
            versionContent[i] = -1;
            if (v.Type != EntryType.File) continue;
            var key = Convert.ToBase64String(v.ContentKey()) + ":" + v.Size;
            if (!contents.TryGetValue(key, out var c))
            {
                c = new Content { Index = contents.Count };
                contents[key] = c;
                order.Add(c);
                if (v.Size > opts.MaxFileBytes) { c.Why = "over the per-file limit"; overFile++; }
                else if (v.Size > budget) { c.Why = "over the total limit"; overTotal++; }
                else
                {
                    var bytes = ReadAll(store, v);
                    c.Hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
                    if (IsText(bytes))
                    {
                        c.Text = Encoding.UTF8.GetString(bytes);
                        budget -= bytes.Length;
                    }
                    else c.Why = "binary";
                }
                if (c.Why is "over the per-file limit" or "over the total limit") { omitted++; omittedBytes += v.Size; }
            }
            versionContent[i] = c.Index;
        }

        var moments = new HashSet<long>();
        var w = new Utf8JsonWriter(output, JsonOpts);
        w.WriteStartObject();
        w.WriteNumber("format", 1);
        w.WriteString("generated", Moments.Format(Moments.Now()));
        w.WriteStartObject("recording");
        w.WriteString("id", rec.IdText);
        w.StringOrNull("name", rec.Name);
        w.StringOrNull("container_id", rec.ContainerId);
        w.StringOrNull("namespace", rec.Namespace);
        w.StringOrNull("image", rec.Image);
        w.StringOrNull("host", rec.Host);
        w.StringOrNull("kernel", rec.Kernel);
        w.WriteStartObject("labels");
        foreach (var (k, val) in rec.Labels) w.WriteString(k, val);
        w.WriteEndObject();
        if (rec.ExitStatus is int s) w.WriteNumber("exit_status", s); else w.WriteNull("exit_status");
        if (rec.ExitTime is long et) w.WriteNumber("exit_offset", et - rec.Start); else w.WriteNull("exit_offset");
        // ns since the epoch exceed a JS number's 53 bits: a string, which the page reads with BigInt.
        w.WriteString("start_ns", rec.Start.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteString("start", Moments.Format(rec.Start));
        w.WriteNumber("end_offset", rec.End - rec.Start);
        w.WriteNumber("stored_bytes", rec.StoredBytes);
        w.StringOrNull("packed_file", rec.PackedFile);
        w.WriteEndObject();

        w.WriteStartObject("limits");
        w.WriteNumber("file_bytes", opts.MaxFileBytes);
        w.WriteNumber("total_bytes", opts.MaxTotalBytes);
        w.WriteEndObject();
        w.WriteStartObject("omitted");
        w.WriteNumber("count", omitted);
        w.WriteNumber("bytes", omittedBytes);
        w.WriteNumber("over_file", overFile);
        w.WriteNumber("over_total", overTotal);
        w.WriteEndObject();
        bool hasEvents = events.Exists(static e => !e.IsGap);
        w.WriteStartObject("totals");
        w.WriteBoolean("has_events", hasEvents);
        w.WriteEndObject();

        w.WriteStartArray("paths");
        foreach (var p in paths) w.WriteStringValue(Human.Path(p));
        w.WriteEndArray();

        // [path, offset, type, mode, uid, gid, size, content, flags, extra] — positional to keep 10,000 versions small.
        w.WriteStartArray("versions");
        for (int i = 0; i < versions.Count; i++)
        {
            var v = versions[i];
            moments.Add(v.Time);
            w.WriteStartArray();
            w.WriteNumberValue(pathIndex[RawPath.Key(v.Path)]);
            w.WriteNumberValue(v.Time - rec.Start);
            w.WriteNumberValue((int)v.Type);
            w.WriteNumberValue(v.Mode);
            w.WriteNumberValue(v.Uid);
            w.WriteNumberValue(v.Gid);
            w.WriteNumberValue(v.Size);
            w.WriteNumberValue(versionContent[i]);
            w.WriteNumberValue(v.ReplacesBelow ? 1 : 0);
            string? extra = v.Type switch
            {
                EntryType.Symlink => "-> " + RawPath.Escape(v.SymlinkTarget),
                EntryType.CharDevice or EntryType.BlockDevice => $"rdev {v.RdevMajor}:{v.RdevMinor}",
                _ => v.HardLinkTo.Length > 0 ? "hard link to " + Human.Path(v.HardLinkTo) : null,
            };
            if (extra == null) w.WriteNullValue(); else w.WriteStringValue(extra);
            w.WriteEndArray();
        }
        w.WriteEndArray();

        // [hash, text|null, why-left-out|null]
        w.WriteStartArray("contents");
        foreach (var c in order)
        {
            w.WriteStartArray();
            if (c.Hash == null) w.WriteNullValue(); else w.WriteStringValue(c.Hash);
            if (c.Text == null) w.WriteNullValue(); else w.WriteStringValue(c.Text);
            if (c.Why == null) w.WriteNullValue(); else w.WriteStringValue(c.Why);
            w.WriteEndArray();
        }
        w.WriteEndArray();

        // [offset, kind, path|-1, pid|null, comm|null, detail|null]
        w.WriteStartArray("events");
        foreach (var e in events)
        {
            moments.Add(e.Time);
            w.WriteStartArray();
            w.WriteNumberValue(e.Time - rec.Start);
            w.WriteStringValue(e.Kind);
            w.WriteNumberValue(e.Path.Length > 0 ? pathIndex[RawPath.Key(e.Path)] : -1);
            if (e.Pid is int pid) w.WriteNumberValue(pid); else w.WriteNullValue();
            if (e.Comm == null) w.WriteNullValue(); else w.WriteStringValue(e.Comm);
            string? detail = e.Detail;
            if (e.ToPath.Length > 0) detail = (detail == null ? "" : detail + " ") + "-> " + Human.Path(e.ToPath);
            if (detail == null) w.WriteNullValue(); else w.WriteStringValue(detail);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        return new ReportSummary(0, paths.Count, versions.Count, events.Count, Math.Max(1, moments.Count), omitted, omittedBytes);
    }

    private static byte[] ReadAll(RecordingStore store, FileVersion v)
    {
        var buf = new byte[v.Size];
        using var r = new ContentReader(store, v);
        int n = 0;
        while (n < buf.Length)
        {
            int k = r.Read(buf.AsSpan(n));
            if (k == 0) break;
            n += k;
        }
        return n == buf.Length ? buf : buf[..n];
    }

    /// <summary>Shown as text: valid UTF-8 without NUL bytes (what editors and `cat` would show sensibly).</summary>
    private static bool IsText(byte[] b) => b.AsSpan().IndexOf((byte)0) < 0 && System.Text.Unicode.Utf8.IsValid(b);
}
