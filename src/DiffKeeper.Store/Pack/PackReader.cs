using System.Buffers.Binary;
using System.Security.Cryptography;
using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Serialization;
using DiffKeeper.Store.Rocks;

namespace DiffKeeper.Store.Pack;

/// <summary>
/// Opens a packed recording read-only: verifies the header and footer, and reads it once while checking the
/// whole-file SHA-256 into a temporary store (deleted on dispose) that holds its metadata and, for each chunk,
/// only where the chunk is in the file: chunk bytes are then read from the packed file itself (and verified
/// against their hash on every read, as from a store), so every query works on it unchanged.
/// </summary>
public static class PackReader
{
    /// <summary>True when the file starts with the packed-recording magic.</summary>
    public static bool LooksLikePack(string file)
    {
        try
        {
            using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            Span<byte> head = stackalloc byte[8];
            return fs.ReadAtLeast(head, 8, false) == 8 && head.SequenceEqual(PackFormat.HeaderMagic);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    public static (RecordingStore Store, RecordingInfo Recording) Open(string file, Action<long, long>? progress = null)
    {
        var tempDir = Path.Combine(Path.GetTempPath(), $"diffkeeper-pack-{Environment.ProcessId}-{Guid.NewGuid():N}");
        RecordingStore? store = null;
        try
        {
            store = RecordingStore.Open(tempDir, deleteOnDispose: tempDir);
            RecordingInfo rec;
            try { rec = Import(file, store, progress); }
            catch (Exception e) when (e is OverflowException or ArgumentException or IndexOutOfRangeException or InvalidOperationException or RocksException
                                       || (e is CorruptDataException && !e.Message.StartsWith(Path.GetFileName(file), StringComparison.Ordinal)))
            {
                // Whatever a damaged record trips over, the answer is the same: the file is corrupt.
                var what = e is OverflowException ? "a length field is out of range" : e.Message;
                throw new CorruptDataException($"{Path.GetFileName(file)} is corrupt: {what}");
            }
            rec.PackedFile = Path.GetFullPath(file);
            store.ReadChunksFrom(File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read));
            return (store, rec);
        }
        catch
        {
            store?.Dispose();
            if (Directory.Exists(tempDir)) Directory.Delete(tempDir, true);
            throw;
        }
    }

    private static RecordingInfo Import(string file, RecordingStore store, Action<long, long>? progress)
    {
        string name = Path.GetFileName(file);
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        long length = fs.Length;
        Span<byte> header = stackalloc byte[PackFormat.HeaderSize];
        if (fs.ReadAtLeast(header, header.Length, false) < header.Length || !header[..8].SequenceEqual(PackFormat.HeaderMagic))
            throw new CorruptDataException($"{name} is not a diffkeeper packed recording (bad magic)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (version != PackFormat.Version) throw new CorruptDataException($"{name}: unsupported packed format version {version}");
        if (length < PackFormat.HeaderSize + PackFormat.FooterSize)
            throw new CorruptDataException($"{name} is truncated (no footer)");
        Span<byte> footer = stackalloc byte[PackFormat.FooterSize];
        fs.Seek(length - PackFormat.FooterSize, SeekOrigin.Begin);
        fs.ReadExactly(footer);
        if (!footer[..8].SequenceEqual(PackFormat.FooterMagic))
            throw new CorruptDataException($"{name} is truncated (the end marker is missing)");
        long payloadEnd = BinaryPrimitives.ReadInt64LittleEndian(footer[8..]);
        if (payloadEnd != length - PackFormat.FooterSize)
            throw new CorruptDataException($"{name} is truncated or has extra bytes (footer says {payloadEnd + PackFormat.FooterSize} bytes, file has {length})");
        var expected = footer[16..].ToArray();

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        fs.Seek(PackFormat.HeaderSize, SeekOrigin.Begin);
        var reader = new RecordReader(fs, sha, payloadEnd);
        var batch = new WriteBatch();
        var noWal = new WriteOptions().DisableWal(true);
        var location = new byte[PackedChunkSource.LocationSize];
        RecordingInfo? rec = null;
        long storedBytes = 0;
        bool ended = false;
        try
        {
            while (!ended)
            {
                var (type, payload) = reader.Next() ?? throw new CorruptDataException($"{name} is truncated (records end before the end record)");
                switch (type)
                {
                    case PackFormat.FileVersion:
                    case PackFormat.Event:
                    {
                        var r = new BinReader(payload);
                        var key = r.Bytes();
                        var value = r.Bytes();
                        if (rec == null || key.Length < 8 || Keys.RecordingOf(key) != rec.Id)
                            throw new CorruptDataException($"{name}: a record at offset {reader.Offset} does not belong to the recording");
                        batch.Put(key, value, type == PackFormat.FileVersion ? store.Versions : store.Events);
                        break;
                    }
                    case PackFormat.Chunk:
                    {
                        if (payload.Length < 32 + 5) throw new CorruptDataException($"{name}: a chunk record is too short");
                        // Where the stored value is in the file (it ends where the record ends), not the value.
                        PackedChunkSource.EncodeLocation(location, reader.Offset - (payload.Length - 32), payload.Length - 32);
                        batch.Put(payload.AsSpan(0, 32), location, store.Chunks);
                        storedBytes += payload.Length - 32;
                        break;
                    }
                    case PackFormat.Recording:
                        if (rec != null) throw new CorruptDataException($"{name} holds two recordings");
                        rec = Records.DecodeRecording(payload);
                        break;
                    case PackFormat.End:
                        ended = true;
                        break;
                    default:
                        throw new CorruptDataException($"{name}: unknown record type {type} at offset {reader.Offset}");
                }
                if (batch.Count() >= 4096) { FlushWithId(store, batch, noWal); }
                progress?.Invoke(reader.Offset, length);
            }
            if (reader.Offset != payloadEnd) throw new CorruptDataException($"{name}: unexpected bytes after the end record");
            Span<byte> actual = stackalloc byte[32];
            sha.GetHashAndReset(actual);
            if (!actual.SequenceEqual(expected)) throw new CorruptDataException($"{name} is corrupt (checksum mismatch)");
            if (rec == null) throw new CorruptDataException($"{name} holds no recording");
            FlushWithId(store, batch, noWal);
            rec.StoredBytes = storedBytes;
            store.SaveRecording(rec);
            return rec;
        }
        catch (EndOfStreamException)
        {
            throw new CorruptDataException($"{name} is truncated");
        }
        finally { batch.Dispose(); }
    }

    private static void FlushWithId(RecordingStore store, WriteBatch batch, WriteOptions wo)
    {
        if (batch.Count() > 0) store.Db.Write(batch, wo);
        batch.Clear();
    }

    private sealed class RecordReader(Stream s, IncrementalHash sha, long end)
    {
        public long Offset { get; private set; } = PackFormat.HeaderSize;

        public (byte Type, byte[] Payload)? Next()
        {
            if (Offset >= end) return null;
            Span<byte> one = stackalloc byte[1];
            byte type = ReadByte(one);
            ulong len = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 35) throw new CorruptDataException("packed file has a bad record length");
                byte b = ReadByte(one);
                len |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) break;
            }
            if ((long)len > end - Offset) throw new CorruptDataException($"packed file is truncated or corrupt (a record at offset {Offset} runs past the end)");
            var payload = new byte[len];
            s.ReadExactly(payload);
            sha.AppendData(payload);
            Offset += (long)len;
            return (type, payload);
        }

        private byte ReadByte(Span<byte> one)
        {
            s.ReadExactly(one);
            sha.AppendData(one);
            Offset++;
            return one[0];
        }
    }
}
