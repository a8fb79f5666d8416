using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli;

public static class ShowVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var rec = src.Recording;
        long at = a.Value("at") is { } t ? TimeArgs.Moment(t, rec, "--at") : rec.End;
        var path = RawPath.FromUser(a.Positionals[1]);
        List<FileVersion>? children = null;
        FileVersion? v;
        if (path.Length == 0)
        {
            v = new FileVersion { Path = [], Time = rec.Start, Type = EntryType.Directory, Mode = 0x1ed };
        }
        else
        {
            v = StateQuery.Find(src.Store, rec.Id, path, at, withChunks: !a.Json);
        }
        if (v == null)
        {
            // The path may exist only implicitly, as the parent of captured entries (an upper layer need not hold it).
            children = Children(src.Store, rec.Id, path, at);
            if (children.Count == 0) throw new NotFoundException($"{Human.Path(path)} does not exist at {Moments.Format(at)}");
            v = new FileVersion { Path = path, Time = children.Min(c => c.Time), Type = EntryType.Directory, Mode = 0x1ed };
        }

        if (a.Json)
        {
            ctx.Out.Json(w =>
            {
                w.PathFields("path", v.Path);
                w.WriteString("type", v.Type.Name());
                w.WriteString("mode", Human.Mode(v.Mode));
                w.WriteNumber("uid", v.Uid);
                w.WriteNumber("gid", v.Gid);
                w.WriteNumber("size", v.Size);
                w.Time("mtime", v.MtimeNs);
                if (v.Type == EntryType.Symlink) w.WriteString("target", RawPath.Lossy(v.SymlinkTarget)); else w.WriteNull("target");
                w.WriteStartObject("xattrs");
                foreach (var x in v.Xattrs) w.WriteString(RawPath.Lossy(x.Key), Convert.ToBase64String(x.Value));
                w.WriteEndObject();
                w.Time("time", v.Time);
                if (v.HardLinkTo.Length > 0) w.PathFields("hardlink_to", v.HardLinkTo);
                if (v.Type is EntryType.CharDevice or EntryType.BlockDevice) w.WriteString("rdev", $"{v.RdevMajor}:{v.RdevMinor}");
                if (v.Opaque) w.WriteBoolean("opaque", true);
            });
            return 0;
        }
        switch (v.Type)
        {
            case EntryType.File:
                using (var reader = new ContentReader(src.Store, v))
                {
                    while (reader.NextPiece(out var data, out var hole))
                    {
                        if (!data.IsEmpty) ctx.Out.Raw(data);
                        else WriteZeros(ctx, hole);
                    }
                }
                break;
            case EntryType.Symlink:
                ctx.Out.Raw(v.SymlinkTarget);
                ctx.Out.Raw("\n"u8);
                break;
            case EntryType.Directory:
                children ??= Children(src.Store, rec.Id, path, at);
                foreach (var c in children)
                    ctx.Out.Line(RawPath.Escape(RawPath.Name(c.Path)) + (c.Type == EntryType.Directory ? "/" : ""));
                break;
            default:
                ctx.Out.Line(v.Type.Name() + (v.Type is EntryType.CharDevice or EntryType.BlockDevice ? $" {v.RdevMajor}:{v.RdevMinor}" : ""));
                break;
        }
        return 0;
    }

    /// <summary>Direct children of a directory at a moment, including directories that exist only as parents.</summary>
    private static List<FileVersion> Children(RecordingStore store, ulong rec, byte[] dir, long at)
    {
        var state = StateQuery.At(store, rec, at, dir);
        var byName = new SortedDictionary<string, FileVersion>(StringComparer.Ordinal);
        int skip = dir.Length == 0 ? 0 : dir.Length + 1;
        foreach (var v in state.Entries.Values)
        {
            var rest = v.Path.AsSpan(skip);
            int slash = rest.IndexOf((byte)'/');
            var name = slash < 0 ? rest : rest[..slash];
            var key = RawPath.Key(name);
            if (slash < 0) byName[key] = v;
            else if (!byName.ContainsKey(key))
                byName[key] = new FileVersion { Path = RawPath.Join(dir, name), Type = EntryType.Directory, Time = v.Time, Mode = 0x1ed };
        }
        return byName.Values.ToList();
    }

    private static void WriteZeros(CliContext ctx, long n)
    {
        Span<byte> zeros = stackalloc byte[8192];
        zeros.Clear();
        while (n > 0)
        {
            int k = (int)Math.Min(n, zeros.Length);
            ctx.Out.Raw(zeros[..k]);
            n -= k;
        }
    }
}
