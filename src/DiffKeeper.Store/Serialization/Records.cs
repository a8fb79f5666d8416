using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Serialization;

/// <summary>Binary encodings of the stored records. The first byte is a format number.</summary>
internal static class Records
{
    private const byte VersionFormat = 1, RecordingFormat = 1, EventFormat = 1;

    public static byte[] Encode(FileVersion v)
    {
        var w = new BinWriter(64 + v.Chunks.Count * 36);
        w.U8(VersionFormat);
        w.U8((byte)v.Type);
        w.U8((byte)((v.Opaque ? 1 : 0) | (v.ReplacesBelow ? 2 : 0)));
        w.VarU(v.Mode); w.VarU(v.Uid); w.VarU(v.Gid);
        w.VarU((ulong)v.Size);
        w.VarS(v.MtimeNs);
        w.VarU(v.RdevMajor); w.VarU(v.RdevMinor);
        w.Bytes(v.SymlinkTarget);
        w.Bytes(v.HardLinkTo);
        w.VarU((ulong)v.Xattrs.Count);
        foreach (var x in v.Xattrs) { w.Bytes(x.Key); w.Bytes(x.Value); }
        w.VarU(v.Inode);
        w.VarS(v.CtimeNs);
        w.VarU((ulong)v.Chunks.Count);
        Span<byte> h = stackalloc byte[32];
        foreach (var c in v.Chunks)
        {
            c.Hash.CopyTo(h);
            w.Raw(h);
            w.VarU((ulong)c.Length);
        }
        return w.ToArray();
    }

    public static FileVersion DecodeVersion(ReadOnlySpan<byte> path, long time, ReadOnlySpan<byte> value, bool withChunks = true)
    {
        var r = new BinReader(value);
        if (r.U8() != VersionFormat) throw new CorruptDataException("unknown version record format");
        var v = new FileVersion { Path = path.ToArray(), Time = time };
        v.Type = (EntryType)r.U8();
        if (v.Type > EntryType.Absent) throw new CorruptDataException("unknown entry type");
        var flags = r.U8();
        v.Opaque = (flags & 1) != 0; v.ReplacesBelow = (flags & 2) != 0;
        v.Mode = (uint)r.VarU(); v.Uid = (uint)r.VarU(); v.Gid = (uint)r.VarU();
        v.Size = (long)r.VarU();
        v.MtimeNs = r.VarS();
        v.RdevMajor = (uint)r.VarU(); v.RdevMinor = (uint)r.VarU();
        v.SymlinkTarget = r.Bytes();
        v.HardLinkTo = r.Bytes();
        int nx = checked((int)r.VarU());
        for (int i = 0; i < nx; i++) v.Xattrs.Add(new(r.Bytes(), r.Bytes()));
        v.Inode = r.VarU();
        v.CtimeNs = r.VarS();
        int nc = checked((int)r.VarU());
        if (!withChunks) return v;
        v.Chunks = new List<ChunkRef>(nc);
        for (int i = 0; i < nc; i++)
        {
            var h = new Hash256(r.Raw(32));
            v.Chunks.Add(new ChunkRef(h, (long)r.VarU()));
        }
        return v;
    }

    public static byte[] Encode(RecordingInfo m)
    {
        var w = new BinWriter();
        w.U8(RecordingFormat);
        w.VarU(m.Id);
        w.Str(m.Name); w.Str(m.Namespace); w.Str(m.ContainerId); w.Str(m.Image);
        w.VarU((ulong)m.Labels.Count);
        foreach (var kv in m.Labels) { w.Str(kv.Key); w.Str(kv.Value); }
        w.U8(m.ExitStatus.HasValue ? (byte)1 : (byte)0);
        w.VarS(m.ExitStatus ?? 0);
        w.Str(m.Host); w.Str(m.Kernel);
        w.VarS(m.Start);
        w.U8(m.ExitTime.HasValue ? (byte)1 : (byte)0);
        w.VarS(m.ExitTime ?? 0);
        w.VarS(m.LastMoment);
        w.VarS(m.StoredBytes);
        return w.ToArray();
    }

    public static RecordingInfo DecodeRecording(ReadOnlySpan<byte> value)
    {
        var r = new BinReader(value);
        if (r.U8() != RecordingFormat) throw new CorruptDataException("unknown recording record format");
        var m = new RecordingInfo { Id = r.VarU() };
        m.Name = r.Str(); m.Namespace = r.Str(); m.ContainerId = r.Str(); m.Image = r.Str();
        int n = checked((int)r.VarU());
        for (int i = 0; i < n; i++) m.Labels[r.Str() ?? ""] = r.Str() ?? "";
        bool hasExit = r.U8() == 1; long exit = r.VarS();
        m.ExitStatus = hasExit ? (int)exit : null;
        m.Host = r.Str(); m.Kernel = r.Str();
        m.Start = r.VarS();
        bool hasExitTime = r.U8() == 1; long et = r.VarS();
        m.ExitTime = hasExitTime ? et : null;
        m.LastMoment = r.VarS();
        m.StoredBytes = r.VarS();
        return m;
    }

    public static byte[] Encode(RecordedEvent e)
    {
        var w = new BinWriter();
        w.U8(EventFormat);
        w.Str(e.Kind);
        w.Bytes(e.Path);
        w.Bytes(e.ToPath);
        w.VarU(e.Pid.HasValue ? (ulong)e.Pid.Value + 1 : 0);
        w.Str(e.Comm);
        w.Str(e.Detail);
        return w.ToArray();
    }

    public static RecordedEvent DecodeEvent(long time, ulong seq, ReadOnlySpan<byte> value)
    {
        var r = new BinReader(value);
        if (r.U8() != EventFormat) throw new CorruptDataException("unknown event record format");
        var e = new RecordedEvent { Time = time, Seq = seq };
        e.Kind = r.Str() ?? "";
        e.Path = r.Bytes();
        e.ToPath = r.Bytes();
        var pid = r.VarU();
        e.Pid = pid == 0 ? null : (int)(pid - 1);
        e.Comm = r.Str();
        e.Detail = r.Str();
        return e;
    }
}
