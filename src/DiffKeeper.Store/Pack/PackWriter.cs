using System.Buffers.Binary;
using System.Security.Cryptography;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;

namespace DiffKeeper.Store.Pack;

/// <summary>Writes one recording and only the chunks it uses into a portable, checksummed file.</summary>
public static class PackWriter
{
    public sealed record Progress(long Chunks, long TotalChunks, long Bytes);

    public static long Write(RecordingStore store, RecordingInfo rec, string file, Action<Progress>? progress = null)
    {
        var tmp = file + ".tmp-" + Environment.ProcessId;
        try
        {
            long size;
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var w = new HashingWriter(fs, sha);
                Span<byte> header = stackalloc byte[PackFormat.HeaderSize];
                PackFormat.HeaderMagic.CopyTo(header);
                BinaryPrimitives.WriteUInt32LittleEndian(header[8..], PackFormat.Version);
                w.Write(header);

                var meta = new RecordingInfo
                {
                    Id = rec.Id, Name = rec.Name, Namespace = rec.Namespace, ContainerId = rec.ContainerId, Image = rec.Image,
                    Labels = rec.Labels, ExitStatus = rec.ExitStatus, Host = rec.Host, Kernel = rec.Kernel, Start = rec.Start,
                    ExitTime = rec.ExitTime, LastMoment = rec.LastMoment, StoredBytes = 0,
                };
                w.Record(PackFormat.Recording, Records.Encode(meta));
                var chunks = new HashSet<Hash256>();
                var order = new List<Hash256>();
                var buf = new BinWriter(1024);
                long versions = 0, events = 0;
                foreach (var (k, v) in store.RawVersions(rec.Id))
                {
                    var (path, time) = Keys.SplitVersion(k);
                    foreach (var c in Records.DecodeVersion(path, time, v).Chunks)
                        if (!c.IsHole && chunks.Add(c.Hash)) order.Add(c.Hash);
                    buf.Clear(); buf.Bytes(k); buf.Bytes(v);
                    w.Record(PackFormat.FileVersion, buf.Span);
                    versions++;
                }
                foreach (var (k, v) in store.RawRange(store.Events, Keys.Recording(rec.Id)))
                {
                    buf.Clear(); buf.Bytes(k); buf.Bytes(v);
                    w.Record(PackFormat.Event, buf.Span);
                    events++;
                }
                long n = 0, bytes = 0;
                Span<byte> hb = stackalloc byte[32];
                // A delta chunk is useless without its base: bases join the list as they are met (order grows).
                for (int i = 0; i < order.Count; i++)
                {
                    var h = order[i];
                    var stored = store.GetStoredChunk(h) ?? throw new CorruptDataException($"chunk {h} is missing from the store");
                    if (Chunking.ChunkCodec.TryGetBase(stored, out var baseHash) && chunks.Add(baseHash)) order.Add(baseHash);
                    buf.Clear();
                    h.CopyTo(hb);
                    buf.Raw(hb); buf.Raw(stored);
                    w.Record(PackFormat.Chunk, buf.Span);
                    bytes += stored.Length;
                    if ((++n & 255) == 0) progress?.Invoke(new Progress(n, order.Count, bytes));
                }
                buf.Clear(); buf.VarU((ulong)versions); buf.VarU((ulong)events); buf.VarU((ulong)order.Count);
                w.Record(PackFormat.End, buf.Span);
                progress?.Invoke(new Progress(n, order.Count, bytes));

                Span<byte> footer = stackalloc byte[PackFormat.FooterSize];
                PackFormat.FooterMagic.CopyTo(footer);
                BinaryPrimitives.WriteInt64LittleEndian(footer[8..], w.Position);
                sha.GetHashAndReset(footer[16..]);
                fs.Write(footer);
                size = fs.Position;
                fs.Flush(true);
            }
            File.Move(tmp, file, overwrite: true);
            return size;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes records and feeds every byte to the checksum.</summary>
    private sealed class HashingWriter(Stream s, IncrementalHash sha)
    {
        public long Position { get; private set; }

        public void Write(ReadOnlySpan<byte> b)
        {
            s.Write(b);
            sha.AppendData(b);
            Position += b.Length;
        }

        public void Record(byte type, ReadOnlySpan<byte> payload)
        {
            Span<byte> head = stackalloc byte[11];
            head[0] = type;
            int n = 1;
            ulong len = (ulong)payload.Length;
            while (len >= 0x80) { head[n++] = (byte)(len | 0x80); len >>= 7; }
            head[n++] = (byte)len;
            Write(head[..n]);
            Write(payload);
        }
    }
}
