using DiffKeeper.Shim.Native;
using DiffKeeper.Shim.Processes;
using DiffKeeper.Shim.Runc;

namespace DiffKeeper.Shim.Io;

/// <summary>
/// The stdio plumbing of one container process, as the runc shim does it:
/// <list type="bullet">
/// <item>Without a terminal runc gets OS pipes and the shim copies between them and the client's FIFOs or files.
/// Output FIFOs are opened O_RDWR so a write never fails when the client is away; the stdin FIFO keeps an O_RDWR
/// handle of the shim's own (closed by CloseIO) so the container sees EOF only after CloseIO.</item>
/// <item>With a terminal runc sends the pty master over a console socket; stdin FIFO → master → stdout FIFO.</item>
/// <item><c>binary://</c> hands the pipes' read ends to a logging binary; <c>file://</c> appends to a file.</item>
/// </list>
/// Every copier owns (and closes) the descriptors it copies between.
/// </summary>
internal sealed class ProcessIo : IDisposable
{
    private readonly StdioPaths _paths;
    private readonly CancelSignal _cancel = new();
    private readonly List<FileDescriptor> _containerEnds = new();
    private readonly List<StreamCopier> _outputCopiers = new();
    private readonly List<StreamCopier> _inputCopiers = new();
    private FileDescriptor? _stdinKeepAlive;
    private bool _stdinClosed;
    private FileDescriptor? _console;
    private ConsoleSocket? _consoleSocket;
    private readonly object _gate = new();

    private uint _ioUid, _ioGid;

    private ProcessIo(StdioPaths paths) => _paths = paths;

    /// <summary>Descriptors for runc's stdio (null: /dev/null). A terminal process gets /dev/null.</summary>
    public RuncStdio RuncStdio { get; private set; } = RuncStdio.Null;

    /// <summary>The console socket path for runc, when a terminal was asked for.</summary>
    public string? ConsoleSocketPath => _consoleSocket?.Path;

    /// <param name="ioUid">with <paramref name="ioGid"/>: owner of the pipe ends the container gets (the runtime
    /// options' IoUid/IoGid), so a process running as that user can reopen its /proc/self/fd/N.</param>
    public static ProcessIo Create(StdioPaths paths, string ns, string id, Reaper reaper, uint ioUid = 0, uint ioGid = 0)
    {
        var io = new ProcessIo(paths) { _ioUid = ioUid, _ioGid = ioGid };
        try
        {
            if (paths.Terminal) io._consoleSocket = ConsoleSocket.Create();
            else io.CreatePipes(ns, id, reaper);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    private void CreatePipes(string ns, string id, Reaper reaper)
    {
        int? stdin = null, stdout = null, stderr = null;
        if (_paths.Stdin.Length > 0)
        {
            var (read, write) = FileDescriptor.Pipe();
            _containerEnds.Add(read);
            Chown(read);
            stdin = read.Value;
            var fifo = OpenStdinFifo(_paths.Stdin);
            _inputCopiers.Add(StreamCopier.Start(fifo, write, _cancel, () => { write.Dispose(); fifo.Dispose(); }, "stdin-copy"));
        }

        var outUri = StdioUri.Parse(_paths.Stdout);
        var errUri = StdioUri.Parse(_paths.Stderr);
        if (outUri.Kind == StdioKind.Binary)
        {
            (stdout, stderr) = BinaryLogger.Start(outUri, ns, id, reaper, _containerEnds);
        }
        else
        {
            stdout = StartOutput(outUri, "stdout-copy");
            stderr = StartOutput(errUri, "stderr-copy");
        }
        RuncStdio = new RuncStdio(stdin, stdout, stderr);
    }

    private int? StartOutput(StdioUri uri, string name)
    {
        if (uri.Kind == StdioKind.Null) return null;
        var destination = uri.Kind == StdioKind.File
            ? OpenAppend(uri.Path)
            : FileDescriptor.Open(uri.Path, LibC.O_RDWR | LibC.O_NONBLOCK);
        var (read, write) = FileDescriptor.Pipe();
        _containerEnds.Add(write);
        Chown(write);
        _outputCopiers.Add(StreamCopier.Start(read, destination, _cancel, () => { destination.Dispose(); read.Dispose(); }, name));
        return write.Value;
    }

    /// <summary>As go-runc's pipe I/O does for the container's end; skipped for root:root, which it already is.</summary>
    private void Chown(FileDescriptor containerEnd)
    {
        if (_ioUid == 0 && _ioGid == 0) return;
        LibC.Check(LibC.fchown(containerEnd.Value, _ioUid, _ioGid), $"fchown stdio pipe to {_ioUid}:{_ioGid}");
    }

    private static FileDescriptor OpenAppend(string path)
    {
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        return FileDescriptor.Open(path, LibC.O_WRONLY | LibC.O_APPEND | LibC.O_CREAT, Convert.ToInt32("644", 8));
    }

    private FileDescriptor OpenStdinFifo(string path)
    {
        // Our own writer first: then the read-only open cannot block, and the reader sees EOF only after both
        // the client and (on CloseIO) we have closed our ends.
        var keepAlive = FileDescriptor.Open(path, LibC.O_RDWR | LibC.O_NONBLOCK);
        var reader = FileDescriptor.Open(path, LibC.O_RDONLY | LibC.O_NONBLOCK);
        lock (_gate)
        {
            if (_stdinClosed) keepAlive.Dispose(); // CloseIO came first (a pty's stdin opens only after runc)
            else _stdinKeepAlive = keepAlive;
        }
        return reader;
    }

    /// <summary>After runc was spawned: the container holds its ends now, ours must go (or EOF never comes).</summary>
    public void ReleaseContainerEnds()
    {
        foreach (var fd in _containerEnds) fd.Dispose();
        _containerEnds.Clear();
    }

    /// <summary>For a terminal: receive the pty master from runc and start copying.</summary>
    public void AttachConsole()
    {
        if (_consoleSocket == null) return;
        var master = _consoleSocket.ReceiveMaster(TimeSpan.FromSeconds(10));
        _consoleSocket.Dispose();
        _consoleSocket = null;
        lock (_gate) _console = master;
        if (_paths.Stdin.Length > 0)
        {
            var fifo = OpenStdinFifo(_paths.Stdin);
            var masterIn = Dup(master);
            _inputCopiers.Add(StreamCopier.Start(fifo, masterIn, _cancel, () => { masterIn.Dispose(); fifo.Dispose(); }, "pty-in"));
        }
        var outUri = StdioUri.Parse(_paths.Stdout);
        if (outUri.Kind is StdioKind.Fifo or StdioKind.File)
        {
            var destination = outUri.Kind == StdioKind.File
                ? OpenAppend(outUri.Path)
                : FileDescriptor.Open(outUri.Path, LibC.O_RDWR | LibC.O_NONBLOCK);
            var masterOut = Dup(master);
            _outputCopiers.Add(StreamCopier.Start(masterOut, destination, _cancel, () => { destination.Dispose(); masterOut.Dispose(); }, "pty-out"));
        }
    }

    private static FileDescriptor Dup(FileDescriptor fd)
    {
        int dup = LibC.fcntl(fd.Value, LibC.F_DUPFD_CLOEXEC, 0);
        if (dup < 0) throw new ErrnoException(LibC.LastErrno, "dup");
        return new FileDescriptor(dup);
    }

    /// <summary>Waits (bounded) for the output copies to reach end of file, so no output is lost at Delete.</summary>
    public Task WaitOutputAsync(TimeSpan timeout)
    {
        if (_outputCopiers.Count == 0) return Task.CompletedTask;
        return Task.WhenAny(Task.WhenAll(_outputCopiers.Select(c => c.Completion)), Task.Delay(timeout));
    }

    /// <summary>CloseIO: drop the shim's own stdin writer so the container gets EOF once the client closes too.</summary>
    public void CloseStdin()
    {
        lock (_gate)
        {
            _stdinClosed = true;
            _stdinKeepAlive?.Dispose();
        }
    }

    public unsafe void Resize(uint width, uint height)
    {
        lock (_gate)
        {
            if (_console == null || _console.IsClosed) return;
            var size = new LibC.WinSize { Col = (ushort)width, Row = (ushort)height };
            LibC.Check(LibC.ioctl(_console.Value, LibC.TIOCSWINSZ, &size), "ioctl(TIOCSWINSZ)");
        }
    }

    public void Dispose()
    {
        ReleaseContainerEnds();
        _cancel.Cancel();
        // Copiers close their own descriptors once they see the cancel signal; give them a moment first.
        Task.WaitAll(_outputCopiers.Select(c => c.Completion).ToArray(), TimeSpan.FromSeconds(1));
        _stdinKeepAlive?.Dispose();
        _consoleSocket?.Dispose();
        lock (_gate) _console?.Dispose();
        // The cancel eventfd stays open until every copier thread is gone: closing it under a poll could let a
        // reused descriptor number wake (or starve) them.
        var copiers = _outputCopiers.Concat(_inputCopiers).Select(c => c.Completion).ToArray();
        Task.WhenAll(copiers).ContinueWith(_ => _cancel.Dispose(), TaskScheduler.Default);
    }
}
