using DiffKeeper.Cli.Output;
using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Native;
using DiffKeeper.Store.Query;

namespace DiffKeeper.Cli.Export;

/// <summary>
/// Restores a state into a directory without ever writing outside it: every parent is opened component by
/// component with O_NOFOLLOW relative to the root fd, files are created with O_CREAT|O_EXCL|O_NOFOLLOW, hard links
/// come after files and symlinks last, so nothing is ever written through a link. Directory modes and times are
/// applied at the end, deepest first, so read-only directories do not block their own contents.
/// </summary>
public sealed unsafe class DirectoryExporter : IDisposable
{
    private readonly RecordingStore _store;
    private readonly Progress _progress;
    private readonly bool _root = Libc.geteuid() == 0;
    private readonly int _rootFd;
    private readonly ExportSummary _summary = new();
    private readonly DirCache _dirs;

    public DirectoryExporter(RecordingStore store, string outDir, Progress progress)
    {
        _store = store;
        _progress = progress;
        if (Directory.Exists(outDir))
        {
            if (Directory.EnumerateFileSystemEntries(outDir).Any()) throw new UsageException($"{outDir} is not empty (export needs an empty or absent directory)");
        }
        else if (File.Exists(outDir)) throw new UsageException($"{outDir} exists and is not a directory");
        else Directory.CreateDirectory(outDir);
        var z = Libc.CString(RawPath.EncodeArg(outDir));
        fixed (byte* p = z) _rootFd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (_rootFd < 0) throw new IOException($"{outDir}: {Libc.ErrorText(Libc.Errno)}");
        _dirs = new DirCache(_rootFd);
        // Files are created with their recorded permission bits (saves an fchmod per file): no umask in the way.
        Libc.umask(0);
    }

    public ExportSummary Export(RecordingState state)
    {
        var entries = state.Sorted();
        var links = new List<FileVersion>();
        var symlinks = new List<FileVersion>();
        var dirs = new List<FileVersion>();
        var files = new List<FileVersion>();
        var nodes = new List<FileVersion>();
        foreach (var v in entries)
        {
            if (!SafePath.IsSafe(v.Path)) { _summary.Unsafe.Add(SafePath.Describe(v.Path)); continue; }
            switch (v.Type)
            {
                case EntryType.Directory: if (MakeDir(v)) dirs.Add(v); break;
                case EntryType.Symlink: symlinks.Add(v); break;
                case EntryType.File when LinkTarget(state, v) != null:
                    links.Add(v);
                    break;
                case EntryType.File: files.Add(v); break;
                default: nodes.Add(v); break;
            }
        }
        // The export is the upper layer at T: a deleted file of the image is a whiteout again (char 0:0), so the
        // directory laid over the same lower layers shows what the container saw. An absence writes nothing: the
        // upper layer had nothing there either.
        foreach (var t in state.Tombstones.Values)
        {
            if (t.Type != EntryType.Whiteout) continue;
            if (!SafePath.IsSafe(t.Path)) { _summary.Unsafe.Add(SafePath.Describe(t.Path)); continue; }
            nodes.Add(t);
        }
        // Files are independent once their directories exist: read, verify and write them on every core.
        // From a cold page cache every chunk read would wait on the disk: when this export reads most of the
        // store's chunk files anyway, let the kernel read them ahead in large sequential requests.
        _store.PrefetchChunkFiles(files.Sum(f => f.Size));
        var written = WriteFiles(files);
        var exported = new HashSet<string>(StringComparer.Ordinal);
        if (links.Count > 0)
            for (int i = 0; i < files.Count; i++)
                if (written[i]) exported.Add(RawPath.Key(files[i].Path));
        foreach (var v in nodes) MakeNode(v);
        foreach (var v in links)
        {
            if (!exported.Contains(RawPath.Key(v.HardLinkTo)) || !Link(v)) WriteFile(v, _dirs);
        }
        foreach (var v in symlinks) MakeSymlink(v);
        for (int i = dirs.Count - 1; i >= 0; i--) FinishDir(dirs[i]);
        _progress.Done();
        return _summary;
    }

    /// <summary>
    /// Writes <paramref name="files"/> on one thread per core, each taking the next file as it finishes one; returns
    /// which were written. Threads of their own, not the thread pool's: a replay writes while its gRPC
    /// calls to containerd are in flight, and their continuations run on the pool (with the pool's threads all
    /// writing, containerd's side waited for the write to end). The first failure is rethrown as it was thrown.
    /// </summary>
    private bool[] WriteFiles(List<FileVersion> files)
    {
        var written = new bool[files.Count];
        int next = -1;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
        void Work()
        {
            try
            {
                using var cache = new DirCache(_rootFd);
                for (int i; failure is null && (i = Interlocked.Increment(ref next)) < files.Count;) written[i] = WriteFile(files[i], cache);
            }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e), null); }
        }
        // No more threads than there is work for: a small state is written on this thread alone.
        var helpers = new Thread[Math.Clamp(files.Count / 64, 0, Environment.ProcessorCount - 1)];
        for (int t = 0; t < helpers.Length; t++) (helpers[t] = new Thread(Work) { IsBackground = true, Name = "export-" + (t + 1) }).Start();
        Work();
        foreach (var t in helpers) t.Join();
        failure?.Throw();
        return written;
    }

    /// <summary>
    /// The entry a recorded hard link can be recreated against: the first name of the inode, captured in the same
    /// snapshot (same moment) or — as the recorder captures a new name of an inode while the first name's version is
    /// older — of the same inode, and still holding the same content; a later version of that name with another inode
    /// is another file.
    /// </summary>
    public static FileVersion? LinkTarget(RecordingState state, FileVersion v)
    {
        if (v.HardLinkTo.Length == 0 || !SafePath.IsSafe(v.HardLinkTo)) return null;
        var t = state.Get(v.HardLinkTo);
        return t != null && t.Type == EntryType.File && t.HardLinkTo.Length == 0 &&
               (t.Time == v.Time || (v.Inode != 0 && t.Inode == v.Inode)) && t.SameContent(v) ? t : null;
    }

    private (int Fd, byte[] Name)? Parent(FileVersion v, DirCache? cache = null)
    {
        var parent = RawPath.Parent(v.Path).ToArray();
        int fd = (cache ?? _dirs).Open(parent, create: true);
        if (fd < 0) { AddWarning($"{SafePath.Describe(v.Path)}: parent directory is not usable"); return null; }
        return (fd, Libc.CString(RawPath.Name(v.Path)));
    }

    private bool MakeDir(FileVersion v)
    {
        if (Parent(v) is not var (pfd, name)) return false;
        int r;
        fixed (byte* n = name) r = Libc.mkdirat(pfd, n, 0x1c0); // 0700 until FinishDir
        if (r != 0 && Libc.Errno != Libc.EEXIST) { Warn(v, "mkdir"); return false; }
        _summary.Entries++;
        return true;
    }

    private bool WriteFile(FileVersion v, DirCache cache)
    {
        if (Parent(v, cache) is not var (pfd, name)) return false;
        // Created with its permission bits (the fd stays writable whatever they are), unless it has xattrs (setting
        // user.* needs write permission on the inode) or setuid/setgid/sticky bits (chown clears them): those get
        // their mode after chown and xattrs.
        bool modeLater = v.Xattrs.Count > 0 || (v.Mode & 0xE00) != 0;
        uint createMode = modeLater ? 0x180u : v.Mode & 0x1FF;
        int fd;
        fixed (byte* n = name) fd = Libc.openat(pfd, n, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, createMode);
        if (fd < 0) { Warn(v, "create"); return false; }
        try
        {
            long off = 0;
            using (var reader = new ContentReader(_store, v))
            {
                while (reader.NextPiece(out var data, out var hole))
                {
                    if (data.IsEmpty) { off += hole; continue; } // a hole stays a hole: skip over it
                    WriteAll(fd, data, off);
                    off += data.Length;
                    Interlocked.Add(ref _summary.Bytes, data.Length);
                    if (_progress.Enabled) lock (_progress) _progress.Report(() => $"export: {_summary.Entries} entries, {Human.Bytes(_summary.Bytes)}");
                }
            }
            // A trailing hole has no bytes to write: the size makes it.
            if (off != v.Size || (v.Chunks.Count > 0 && v.Chunks[^1].IsHole))
                if (Libc.ftruncate(fd, v.Size) != 0) Warn(v, "truncate");
            if (_root && (v.Uid != 0 || v.Gid != 0) && Libc.fchown(fd, v.Uid, v.Gid) != 0) Warn(v, "chown");
            SetXattrs(fd, v); // after chown (which drops security.capability), before a read-only mode
            if (modeLater && Libc.fchmod(fd, v.Mode) != 0) Warn(v, "chmod");
            SetTimes(fd, null, v.MtimeNs, 0);
            Interlocked.Increment(ref _summary.Entries);
            return true;
        }
        finally { Libc.close(fd); }
    }

    private static readonly byte[] DotZ = [(byte)'.', 0];

    private static void WriteAll(int fd, ReadOnlySpan<byte> data, long off)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.pwrite(fd, p + done, data.Length - done, off + done);
                if (n < 0)
                {
                    if (Libc.Errno == Libc.EINTR) continue;
                    throw new IOException("write: " + Libc.ErrorText(Libc.Errno));
                }
                done += (int)n;
            }
        }
    }

    private bool Link(FileVersion v)
    {
        if (Parent(v) is not var (pfd, name)) return false;
        var target = v.HardLinkTo;
        int gen = _dirs.Generation;
        int tfd = _dirs.Open(RawPath.Parent(target).ToArray(), create: false);
        if (tfd < 0) return false;
        if (gen != _dirs.Generation)
        {
            // The cache was emptied while opening the target's directory: the parent fd is stale, reopen it.
            var again = Parent(v);
            if (again == null) return false;
            pfd = again.Value.Fd;
        }
        var tname = Libc.CString(RawPath.Name(target));
        int r;
        fixed (byte* t = tname)
        fixed (byte* n = name)
            r = Libc.linkat(tfd, t, pfd, n, 0); // flags 0: a symlink as the old name is linked, never followed
        if (r != 0) return false;
        _summary.Entries++;
        return true;
    }

    private void MakeNode(FileVersion v)
    {
        uint type = v.Type switch
        {
            EntryType.Fifo => Libc.S_IFIFO,
            EntryType.CharDevice or EntryType.Whiteout => Libc.S_IFCHR,
            EntryType.BlockDevice => Libc.S_IFBLK,
            _ => Libc.S_IFSOCK,
        };
        // Whiteouts (char 0:0) need no privilege since Linux 5.8; other devices do.
        if (!_root && v.Type is EntryType.CharDevice or EntryType.BlockDevice)
        {
            AddWarning($"{SafePath.Describe(v.Path)}: device nodes need root; skipped");
            return;
        }
        if (Parent(v) is not var (pfd, name)) return;
        int r;
        fixed (byte* n = name) r = Libc.mknodat(pfd, n, type | v.Mode, Libc.MakeDev(v.RdevMajor, v.RdevMinor));
        if (r != 0) { Warn(v, "mknod"); return; }
        fixed (byte* n = name)
        {
            if (_root) Libc.fchownat(pfd, n, v.Uid, v.Gid, Libc.AT_SYMLINK_NOFOLLOW);
            Libc.fchmodat(pfd, n, v.Mode, 0);
        }
        SetXattrsAt(pfd, name, v);
        SetTimes(pfd, name, v.MtimeNs, Libc.AT_SYMLINK_NOFOLLOW);
        _summary.Entries++;
    }

    private void MakeSymlink(FileVersion v)
    {
        if (Parent(v) is not var (pfd, name)) return;
        var target = Libc.CString(v.SymlinkTarget);
        int r;
        fixed (byte* t = target)
        fixed (byte* n = name)
            r = Libc.symlinkat(t, pfd, n);
        if (r != 0) { Warn(v, "symlink"); return; }
        fixed (byte* n = name)
            if (_root) Libc.fchownat(pfd, n, v.Uid, v.Gid, Libc.AT_SYMLINK_NOFOLLOW);
        SetXattrsAt(pfd, name, v);
        SetTimes(pfd, name, v.MtimeNs, Libc.AT_SYMLINK_NOFOLLOW);
        _summary.Entries++;
    }

    private void FinishDir(FileVersion v)
    {
        int fd = _dirs.Open(v.Path, create: false);
        if (fd < 0) return;
        // The cached fd is O_PATH; metadata calls need a real one.
        int real;
        fixed (byte* d = DotZ) real = Libc.openat(fd, d, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (real < 0) { Warn(v, "open directory"); return; }
        try
        {
            if (_root && Libc.fchown(real, v.Uid, v.Gid) != 0) Warn(v, "chown");
            SetXattrs(real, v);
            if (v.Opaque) SetOpaque(real, v);
            if (Libc.fchmod(real, v.Mode) != 0) Warn(v, "chmod");
            SetTimes(real, null, v.MtimeNs, 0);
        }
        finally { Libc.close(real); }
    }

    /// <summary>
    /// Overlay's opaque mark, so the directory again hides what the lower layers hold below it: trusted.* as root,
    /// user.overlay.opaque (what an unprivileged "userxattr" overlay mount reads) otherwise.
    /// </summary>
    private void SetOpaque(int fd, FileVersion v)
    {
        var name = _root ? "trusted.overlay.opaque\0"u8 : "user.overlay.opaque\0"u8;
        int r;
        fixed (byte* n = name)
        fixed (byte* y = "y"u8)
            r = Libc.fsetxattr(fd, n, y, 1, 0);
        if (r != 0) Warn(v, "set the opaque mark");
    }

    private void SetXattrs(int fd, FileVersion v)
    {
        if (v.Xattrs.Count > 0) SetEach(v, (name, value, size) => Libc.fsetxattr(fd, name, value, size, 0));
    }

    /// <summary>
    /// xattrs of a symlink or special file, which cannot be opened for fsetxattr: lsetxattr through the parent's
    /// /proc/self/fd link (the parent was opened safely below --out; the last name is not followed). The kernel
    /// allows only trusted.* and security.* on these (user.* exist only on files and directories), so as root.
    /// </summary>
    private void SetXattrsAt(int parentFd, byte[] nameZ, FileVersion v)
    {
        if (v.Xattrs.Count == 0 || !_root) return;
        var pathZ = Libc.CString([.. System.Text.Encoding.ASCII.GetBytes($"/proc/self/fd/{parentFd}/"), .. nameZ.AsSpan(0, nameZ.Length - 1)]);
        SetEach(v, (name, value, size) =>
        {
            fixed (byte* p = pathZ) return Libc.lsetxattr(p, name, value, size, 0);
        });
    }

    private delegate int XattrSetter(byte* name, byte* value, nint size);

    private void SetEach(FileVersion v, XattrSetter set)
    {
        foreach (var x in v.Xattrs)
        {
            if (!MaySet(x.Key)) continue;
            var nz = Libc.CString(x.Key);
            int r;
            fixed (byte* n = nz)
            fixed (byte* val = x.Value)
                r = set(n, val, x.Value.Length);
            if (r != 0) Warn(v, "setxattr " + RawPath.Escape(x.Key));
        }
    }

    /// <summary>user.* always; trusted.* and security.* only as root (others would fail anyway).</summary>
    private bool MaySet(ReadOnlySpan<byte> name) => _root || name.StartsWith("user."u8);

    private static void SetTimes(int dirfd, byte[]? nameZ, long mtimeNs, int flags)
    {
        long* ts = stackalloc long[4];
        const long UtimeOmit = (1L << 30) - 2;
        ts[0] = 0; ts[1] = UtimeOmit;
        ts[2] = Math.DivRem(mtimeNs, Moments.NsPerSecond, out var ns); ts[3] = ns;
        if (ts[3] < 0) { ts[3] += Moments.NsPerSecond; ts[2]--; }
        // glibc's utimensat refuses a NULL name: an fd alone goes through futimens.
        if (nameZ == null) { Libc.futimens(dirfd, ts); return; }
        fixed (byte* n = nameZ) Libc.utimensat(dirfd, n, ts, flags);
    }

    private void Warn(FileVersion v, string what) => AddWarning($"{SafePath.Describe(v.Path)}: {what}: {Libc.ErrorText(Libc.Errno)}");

    private void AddWarning(string w)
    {
        lock (_summary.Warnings) _summary.Warnings.Add(w);
    }

    public void Dispose()
    {
        _dirs.Dispose();
        Libc.close(_rootFd);
    }

    /// <summary>
    /// O_PATH fds of directories below the root, opened one component at a time with O_NOFOLLOW (a symlink in the
    /// way fails the open instead of being followed). Creates missing parents when asked.
    /// </summary>
    private sealed class DirCache(int rootFd) : IDisposable
    {
        private readonly Dictionary<string, int> _open = new(StringComparer.Ordinal);
        private const int MaxOpen = 4096;
        private int _depth;

        /// <summary>Changes whenever cached fds were closed (an fd from an earlier call is then stale).</summary>
        public int Generation { get; private set; }

        public int Open(byte[] dir, bool create)
        {
            // Evict only at the start of a top-level call, so the fds one call returns stay valid until the next.
            if (_depth == 0 && _open.Count >= MaxOpen) { Clear(); Generation++; }
            _depth++;
            try { return OpenInner(dir, create); }
            finally { _depth--; }
        }

        private int OpenInner(byte[] dir, bool create)
        {
            if (dir.Length == 0) return rootFd;
            var key = RawPath.Key(dir);
            if (_open.TryGetValue(key, out var cached)) return cached;
            int parent = Open(RawPath.Parent(dir).ToArray(), create);
            if (parent < 0) return -1;
            var nameZ = Libc.CString(RawPath.Name(dir));
            int fd;
            fixed (byte* n = nameZ)
            {
                fd = Libc.openat(parent, n, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (fd < 0 && create && Libc.Errno == Libc.ENOENT)
                {
                    Libc.mkdirat(parent, n, 0x1ed);
                    fd = Libc.openat(parent, n, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                }
            }
            if (fd < 0) return -1;
            _open[key] = fd;
            return fd;
        }

        private void Clear()
        {
            foreach (var fd in _open.Values) Libc.close(fd);
            _open.Clear();
        }

        public void Dispose() => Clear();
    }
}
