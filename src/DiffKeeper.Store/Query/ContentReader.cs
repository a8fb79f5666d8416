using DiffKeeper.Store.Chunking;
using DiffKeeper.Store.Model;

namespace DiffKeeper.Store.Query;

/// <summary>
/// Streams a version's content chunk by chunk. Every chunk is checked against its SHA-256 as it is read: a
/// missing or damaged chunk throws <see cref="CorruptDataException"/> — a wrong file is never presented as right.
/// </summary>
public sealed class ContentReader : Stream
{
    private readonly IChunkSource _chunks;
    private readonly FileVersion _version;
    // One decoder and buffer per thread, reused by every reader on it (an export opens thousands of readers).
    [ThreadStatic] private static ChunkCodec? t_codec;
    [ThreadStatic] private static byte[]? t_chunk;
    private readonly ChunkCodec _codec = t_codec ??= new ChunkCodec();
    private readonly byte[] _chunk = t_chunk ??= new byte[FastCdc.DefaultMax * 2];
    private int _index = -1, _chunkLen, _chunkPos;
    private long _holeLeft, _position;

    public ContentReader(RecordingStore store, FileVersion version)
    {
        _chunks = store.ChunkSource;
        _version = version;
    }

    /// <summary>The next piece: either data (returned span) or a hole of <paramref name="holeLength"/> bytes.</summary>
    public bool NextPiece(out ReadOnlySpan<byte> data, out long holeLength)
    {
        data = default;
        holeLength = 0;
        if (++_index >= _version.Chunks.Count) return false;
        var c = _version.Chunks[_index];
        if (c.IsHole) { holeLength = c.Length; _position += c.Length; return true; }
        int n = Load(c);
        data = _chunk.AsSpan(0, n);
        _position += n;
        return true;
    }

    private int Load(ChunkRef c)
    {
        var state = (Reader: this, Hash: c.Hash, Length: 0);
        if (!_chunks.TryUseChunk(c.Hash, ref state,
                static (stored, ref st) => st.Length = st.Reader._codec.DecodeVerified(st.Hash, stored, st.Reader._chunk, st.Reader._chunks)))
            throw new CorruptDataException($"chunk {c.Hash} of /{RawPath.Escape(_version.Path)} is missing from the store");
        if (state.Length != c.Length) throw new CorruptDataException($"chunk {c.Hash} of /{RawPath.Escape(_version.Path)} has the wrong length");
        return state.Length;
    }

    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            if (_holeLeft > 0)
            {
                int n = (int)Math.Min(buffer.Length, _holeLeft);
                buffer[..n].Clear();
                _holeLeft -= n;
                _position += n;
                return n;
            }
            if (_chunkPos < _chunkLen)
            {
                int n = Math.Min(buffer.Length, _chunkLen - _chunkPos);
                _chunk.AsSpan(_chunkPos, n).CopyTo(buffer);
                _chunkPos += n;
                _position += n;
                return n;
            }
            if (++_index >= _version.Chunks.Count) return 0;
            var c = _version.Chunks[_index];
            if (c.IsHole) { _holeLeft = c.Length; continue; }
            _chunkLen = Load(c);
            _chunkPos = 0;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _version.Size;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

}
