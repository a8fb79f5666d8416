using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace DiffKeeper.Ttrpc.Framing;

/// <summary>
/// Serializes writes to one connection: concurrent calls and handlers each send whole frames, never interleaved.
/// </summary>
internal sealed class FrameWriter(Socket socket)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>
    /// Sends one complete frame. <paramref name="ct"/> only bounds the wait for our turn: once bytes start going
    /// out the frame is finished, because a frame cut short would corrupt every frame after it.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            while (frame.Length > 0)
            {
                int sent = await socket.SendAsync(frame, SocketFlags.None).ConfigureAwait(false);
                frame = frame[sent..];
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
