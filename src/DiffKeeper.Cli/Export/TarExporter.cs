using System.Globalization;
using System.Text;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli.Export;

/// <summary>
/// Writes a state as a POSIX pax archive. Names go into pax "path"/"linkpath" records as raw bytes (with
/// hdrcharset=BINARY when they are not UTF-8), so non-UTF-8 names and newlines survive byte-exact;
/// xattrs go into SCHILY.xattr records; times keep nanoseconds. System.Formats.Tar takes string names, hence ours.
/// With <paramref name="ociLayer"/> the archive is an OCI image layer (image-spec layer.md): a whiteout becomes an
/// empty `.wh.NAME` beside it, an opaque directory gets `DIR/.wh..wh..opq`, and overlay's own trusted.overlay.*
/// xattrs are left out (they describe the upper dir, not the file; the runtime's snapshotter sets its own).
/// </summary>
public sealed class TarExporter(RecordingStore store, Stream output, Progress progress, bool ociLayer = false)
{
    private const int Block = 512;
    private readonly ExportSummary _summary = new();
    private readonly byte[] _buf = new byte[64 * 1024];
    private long _paxSeq;

    public ExportSummary Export(RecordingState state)
    {
        var written = new HashSet<string>(StringComparer.Ordinal);
        var entries = state.Sorted();
        if (ociLayer)
        {
            // Deleted files of the image live among the tombstones; absences (paths only the container ever had)
            // need nothing in a layer, since no lower layer has them.
            entries.AddRange(state.Tombstones.Values.Where(t => t.Type == EntryType.Whiteout));
            entries.Sort(static (a, b) => RecordingState.ComparePaths(a.Path, b.Path));
        }
        foreach (var v in entries)
        {
            if (!SafePath.IsSafe(v.Path)) { _summary.Unsafe.Add(SafePath.Describe(v.Path)); continue; }
            if (v.Type == EntryType.Whiteout)
            {
                if (ociLayer) { WriteMarker(WhiteoutName(v.Path), v); _summary.Entries++; }
                continue;
            }
            bool asLink = v.Type == EntryType.File && DirectoryExporter.LinkTarget(state, v) != null && written.Contains(RawPath.Key(v.HardLinkTo));
            WriteEntry(v, asLink);
            if (ociLayer && v.Type == EntryType.Directory && v.Opaque) WriteMarker([.. v.Path, .. "/.wh..wh..opq"u8], v);
            if (v.Type == EntryType.File && !asLink) written.Add(RawPath.Key(v.Path));
            _summary.Entries++;
        }
        output.Write(new byte[Block * 2]); // end of archive
        output.Flush();
        progress.Done();
        return _summary;
    }

    /// <summary>"dir/name" → "dir/.wh.name".</summary>
    private static byte[] WhiteoutName(byte[] path)
    {
        int slash = Array.LastIndexOf(path, (byte)'/');
        return [.. path.AsSpan(0, slash + 1), .. ".wh."u8, .. path.AsSpan(slash + 1)];
    }

    /// <summary>An empty regular file that only marks something (a whiteout or an opaque directory).</summary>
    private void WriteMarker(byte[] name, FileVersion at)
    {
        var marker = new FileVersion { Path = name, Type = EntryType.File, Mode = 0, MtimeNs = at.MtimeNs };
        WriteEntry(marker, false);
    }

    private void WriteEntry(FileVersion v, bool asHardLink)
    {
        char type = asHardLink ? '1' : v.Type switch
        {
            EntryType.File => '0',
            EntryType.Symlink => '2',
            EntryType.CharDevice => '3',
            EntryType.BlockDevice => '4',
            EntryType.Directory => '5',
            EntryType.Fifo => '6',
            _ => '6', // a socket cannot be archived; a fifo placeholder keeps the name
        };
        long size = type == '0' ? v.Size : 0;
        var name = v.Type == EntryType.Directory ? [.. v.Path, (byte)'/'] : v.Path;
        byte[] link = asHardLink ? v.HardLinkTo : v.Type == EntryType.Symlink ? v.SymlinkTarget : [];

        var pax = new MemoryStream();
        bool binary = !IsUtf8(name) || !IsUtf8(link);
        if (binary) PaxRecord(pax, "hdrcharset"u8, "BINARY"u8);
        PaxRecord(pax, "path"u8, name);
        if (link.Length > 0) PaxRecord(pax, "linkpath"u8, link);
        PaxRecord(pax, "mtime"u8, Encoding.ASCII.GetBytes(MtimeText(v.MtimeNs)));
        if (size > 077777777777L) PaxRecord(pax, "size"u8, Encoding.ASCII.GetBytes(size.ToString(CultureInfo.InvariantCulture)));
        if (v.Uid > 07777777) PaxRecord(pax, "uid"u8, Encoding.ASCII.GetBytes(v.Uid.ToString(CultureInfo.InvariantCulture)));
        if (v.Gid > 07777777) PaxRecord(pax, "gid"u8, Encoding.ASCII.GetBytes(v.Gid.ToString(CultureInfo.InvariantCulture)));
        foreach (var x in v.Xattrs)
        {
            if (ociLayer && x.Key.AsSpan().StartsWith("trusted.overlay."u8)) continue;
            PaxRecord(pax, [.. "SCHILY.xattr."u8, .. x.Key], x.Value);
        }

        var paxBytes = pax.ToArray();
        var paxName = Encoding.ASCII.GetBytes($"PaxHeaders/{++_paxSeq}");
        WriteHeader(paxName, 'x', paxBytes.Length, 0x1a4, 0, 0, 0, [], 0, 0);
        output.Write(paxBytes);
        Pad(paxBytes.Length);

        // The ustar fields carry a best-effort name for readers that ignore pax; pax wins for everyone else.
        var shortName = name.Length <= 100 ? name : name.AsSpan(name.Length - 100).ToArray();
        var shortLink = link.Length <= 100 ? link : [];
        WriteHeader(shortName, type, size, v.Mode, v.Uid, v.Gid, v.MtimeNs / Moments.NsPerSecond, shortLink, v.RdevMajor, v.RdevMinor);
        if (size > 0) WriteContent(v);
    }

    private void WriteContent(FileVersion v)
    {
        long written = 0;
        using var reader = new ContentReader(store, v);
        while (reader.NextPiece(out var data, out var hole))
        {
            if (!data.IsEmpty)
            {
                output.Write(data);
                written += data.Length;
                _summary.Bytes += data.Length;
            }
            else
            {
                Array.Clear(_buf);
                for (long left = hole; left > 0;)
                {
                    int n = (int)Math.Min(left, _buf.Length);
                    output.Write(_buf, 0, n);
                    left -= n;
                }
                written += hole;
            }
            progress.Report(() => $"export: {_summary.Entries} entries, {Human.Bytes(_summary.Bytes)}");
        }
        if (written != v.Size) throw new CorruptDataException($"{SafePath.Describe(v.Path)}: content length {written} does not match its size {v.Size}");
        Pad(written);
    }

    private void Pad(long n)
    {
        int rem = (int)(n % Block);
        if (rem != 0) output.Write(new byte[Block - rem]);
    }

    private void WriteHeader(byte[] name, char type, long size, uint mode, uint uid, uint gid, long mtime, byte[] link, uint devMajor, uint devMinor)
    {
        var h = new byte[Block];
        name.AsSpan(0, Math.Min(100, name.Length)).CopyTo(h);
        Octal(h.AsSpan(100, 8), mode & 0xfff);
        Octal(h.AsSpan(108, 8), Math.Min(uid, 07777777u));
        Octal(h.AsSpan(116, 8), Math.Min(gid, 07777777u));
        Octal(h.AsSpan(124, 12), Math.Min(size, 077777777777L));
        Octal(h.AsSpan(136, 12), Math.Clamp(mtime, 0, 077777777777L));
        h.AsSpan(148, 8).Fill((byte)' ');
        h[156] = (byte)type;
        link.AsSpan(0, Math.Min(100, link.Length)).CopyTo(h.AsSpan(157));
        "ustar\0"u8.CopyTo(h.AsSpan(257));
        "00"u8.CopyTo(h.AsSpan(263));
        Octal(h.AsSpan(329, 8), devMajor);
        Octal(h.AsSpan(337, 8), devMinor);
        long sum = 0;
        foreach (var b in h) sum += b;
        Octal(h.AsSpan(148, 7), sum);
        h[155] = (byte)' ';
        output.Write(h);
    }

    private static void Octal(Span<byte> field, long value)
    {
        var s = Convert.ToString(value, 8).PadLeft(field.Length - 1, '0');
        Encoding.ASCII.GetBytes(s, field);
        field[^1] = 0;
    }

    /// <summary>"LEN key=value\n" where LEN counts the whole record including its own digits.</summary>
    private static void PaxRecord(Stream s, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        int body = key.Length + value.Length + 3; // ' ', '=', '\n'
        int len = body + 1;
        while (len.ToString(CultureInfo.InvariantCulture).Length + body != len) len++;
        s.Write(Encoding.ASCII.GetBytes(len.ToString(CultureInfo.InvariantCulture)));
        s.WriteByte((byte)' ');
        s.Write(key);
        s.WriteByte((byte)'=');
        s.Write(value);
        s.WriteByte((byte)'\n');
    }

    private static string MtimeText(long ns)
    {
        long secs = Math.DivRem(ns, Moments.NsPerSecond, out var frac);
        if (frac < 0) { frac += Moments.NsPerSecond; secs--; }
        return frac == 0 ? secs.ToString(CultureInfo.InvariantCulture) : $"{secs}.{frac:D9}";
    }

    private static bool IsUtf8(ReadOnlySpan<byte> b) => System.Text.Unicode.Utf8.IsValid(b);
}
