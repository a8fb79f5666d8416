using System.Runtime.InteropServices;

namespace DiffKeeper.Store.Native;

/// <summary>Whether a directory's file system takes O_DIRECT writes (tmpfs, for one, refuses them at open).</summary>
public static unsafe class DirectIo
{
    private const int Block = 4096;

    /// <summary>Creates, writes one aligned block to, and removes a probe file in <paramref name="dir"/>.</summary>
    public static bool Supported(string dir)
    {
        var probe = Path.Combine(dir, $".direct-io-probe-{Environment.ProcessId}");
        var pathZ = Libc.CString(System.Text.Encoding.UTF8.GetBytes(probe));
        int fd;
        fixed (byte* p = pathZ)
            fd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_TRUNC | Libc.O_CLOEXEC | Libc.O_DIRECT, 0x180);
        if (fd < 0) return false;
        void* buf = NativeMemory.AlignedAlloc(Block, Block);
        try
        {
            new Span<byte>(buf, Block).Clear();
            return Libc.write(fd, (byte*)buf, Block) == Block;
        }
        finally
        {
            NativeMemory.AlignedFree(buf);
            Libc.close(fd);
            try { File.Delete(probe); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
