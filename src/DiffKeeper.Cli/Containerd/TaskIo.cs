using System.Runtime.InteropServices;

namespace DiffKeeper.Cli.Containerd;

/// <summary>
/// A task's standard streams as FIFOs (what containerd's cio does): the shim opens them at task create; we copy
/// stdout/stderr to ours as they come, and with a terminal or -i our stdin to the task (with a terminal, ours in raw mode meanwhile).
/// The copy threads are background threads: a task that never opens its FIFOs cannot keep us alive.
/// </summary>
public sealed partial class TaskIo : IDisposable
{
    private readonly List<Thread> _outputs = [];
    private readonly string _dir;
    private byte[]? _savedTermios;

    public string? Stdin { get; }
    public string Stdout { get; }
    public string? Stderr { get; }
    public bool Terminal { get; }

    public TaskIo(string dir, bool terminal, bool outputToStderr = false, bool interactive = false)
    {
        _dir = dir;
        Terminal = terminal;
        Stdout = Fifo("stdout");
        Stderr = terminal ? null : Fifo("stderr"); // a terminal has one output
        Stdin = terminal || interactive ? Fifo("stdin") : null;
        Copy(Stdout, outputToStderr ? Console.OpenStandardError() : Console.OpenStandardOutput());
        if (Stderr is not null) Copy(Stderr, Console.OpenStandardError());
        if (Stdin is not null)
        {
            var t = new Thread(() =>
            {
                try
                {
                    using var fifo = new FileStream(Stdin, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
                    using var input = Console.OpenStandardInput();
                    var buf = new byte[4096];
                    int n;
                    while ((n = input.Read(buf, 0, buf.Length)) > 0) { fifo.Write(buf, 0, n); fifo.Flush(); }
                }
                catch (IOException) { } // the task ended
            }) { IsBackground = true, Name = "replay stdin" };
            t.Start();
        }
    }

    private string Fifo(string name)
    {
        var path = Path.Combine(_dir, name);
        if (MkFifo(path, 0b110_000_000) != 0) throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
        return path;
    }

    private void Copy(string fifo, Stream to)
    {
        var t = new Thread(() =>
        {
            try
            {
                using var from = new FileStream(fifo, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
                var buf = new byte[65536];
                int n;
                while ((n = from.Read(buf, 0, buf.Length)) > 0) { to.Write(buf, 0, n); to.Flush(); }
            }
            catch (IOException) { }
        }) { IsBackground = true, Name = "replay output" };
        t.Start();
        _outputs.Add(t);
    }

    /// <summary>Puts our terminal in raw mode (keys go to the task as typed); undone by <see cref="Dispose"/>.</summary>
    public void RawMode()
    {
        if (!Terminal || IsATty(0) != 1) return;
        var t = new byte[TermiosSize];
        if (TcGetAttr(0, t) != 0) return;
        _savedTermios = (byte[])t.Clone();
        CfMakeRaw(t);
        TcSetAttr(0, 0, t);
    }

    /// <summary>Our terminal's size (rows, columns), when stdin is one.</summary>
    public static (uint Width, uint Height)? WindowSize()
    {
        var ws = new ushort[4];
        if (IsATty(0) != 1 || Ioctl(0, TIOCGWINSZ, ws) != 0 || ws[0] == 0) return null;
        return (ws[1], ws[0]);
    }

    /// <summary>Waits (a little) for the outputs to drain after the task ended: the shim closes them then.</summary>
    public void Drain(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        foreach (var t in _outputs) t.Join(until - DateTime.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.Zero);
    }

    public void Dispose()
    {
        if (_savedTermios is not null) TcSetAttr(0, 0, _savedTermios);
        _savedTermios = null;
    }

    private const int TermiosSize = 64; // glibc's struct termios is 60 bytes on Linux
    private const ulong TIOCGWINSZ = 0x5413;

    // Through Tmds.LibC (its imports set the last P/Invoke error); cfmakeraw, which it lacks, is declared below.
    private static unsafe int MkFifo(string path, uint mode)
    {
        fixed (byte* p = System.Text.Encoding.UTF8.GetBytes(path + "\0")) return Tmds.Linux.LibC.mkfifo(p, (Tmds.Linux.mode_t)mode);
    }

    private static int IsATty(int fd) => Tmds.Linux.LibC.isatty(fd);

    private static unsafe int TcGetAttr(int fd, byte[] buffer)
    {
        fixed (byte* t = buffer) return Tmds.Linux.LibC.tcgetattr(fd, (Tmds.Linux.termios*)t);
    }

    private static unsafe int TcSetAttr(int fd, int when, byte[] buffer)
    {
        fixed (byte* t = buffer) return Tmds.Linux.LibC.tcsetattr(fd, when, (Tmds.Linux.termios*)t);
    }

    private static unsafe int Ioctl(int fd, ulong request, ushort[] winsize)
    {
        fixed (ushort* w = winsize) return Tmds.Linux.LibC.ioctl(fd, (int)request, w);
    }

    [LibraryImport("libc", EntryPoint = "cfmakeraw")]
    private static partial void CfMakeRaw([In, Out] byte[] termios);
}
