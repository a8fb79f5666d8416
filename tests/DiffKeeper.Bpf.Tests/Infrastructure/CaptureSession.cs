namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>
/// One test's world: the real BPF object loaded into the real kernel, a scratch directory on a disk file system,
/// and a shell in its own mount namespace (the "container") that is tracked under <see cref="Slot"/>.
/// Everything is released in Dispose, also when the test fails.
/// </summary>
public sealed class CaptureSession : IDisposable
{
    public const uint Slot = 42;

    private CaptureSession(ChangeCapture capture, TempDir scratch, NamespacedShell shell)
    {
        Capture = capture; Scratch = scratch; Shell = shell;
    }

    /// <summary>Skips (or fails, under DIFFKEEPER_REQUIRE_INTEGRATION=1) when the kernel or tools are missing.</summary>
    public static CaptureSession Start(int dirtySetCapacity = ChangeCapture.DefaultDirtySetCapacity, bool track = true)
    {
        string obj = BpfEnv.RequireAll();
        TempDir? scratch = null;
        ChangeCapture? capture = null;
        NamespacedShell? shell = null;
        try
        {
            scratch = new TempDir("dk-bpf-test-", onDisk: true);
            capture = ChangeCapture.Load(obj, dirtySetCapacity);
            shell = new NamespacedShell();
            if (track) capture.Track(shell.MountNamespace, Slot);
            return new CaptureSession(capture, scratch, shell);
        }
        catch
        {
            shell?.Dispose(); capture?.Dispose(); scratch?.Dispose();
            throw;
        }
    }

    public ChangeCapture Capture { get; }
    public TempDir Scratch { get; }
    public NamespacedShell Shell { get; }

    /// <summary>Drains the whole dirty set.</summary>
    public List<DirtyInode> Drain()
    {
        var list = new List<DirtyInode>();
        int n = Capture.Drain(list);
        Assert.Equal(list.Count, n);
        Assert.Equal(list.Count, list.Select(e => (e.Dev, e.Ino)).Distinct().Count()); // one entry per inode
        return list;
    }

    /// <summary>The entry of the inode at <paramref name="path"/> (stat'ed now), or null.</summary>
    public static DirtyInode? Find(List<DirtyInode> drained, string path)
    {
        var (dev, ino) = BpfEnv.Stat(path);
        return Find(drained, dev, ino);
    }

    public static DirtyInode? Find(List<DirtyInode> drained, ulong dev, ulong ino)
    {
        foreach (var e in drained) if (e.Dev == dev && e.Ino == ino) return e;
        return null;
    }

    public static DirtyInode Require(List<DirtyInode> drained, string path, ChangeKinds kinds)
    {
        var e = Find(drained, path);
        Assert.True(e is not null, $"no dirty-set entry for {path} {BpfEnv.Stat(path)}; drained: {Describe(drained)}");
        Assert.True((e.Value.Kinds & kinds) == kinds, $"{path}: kinds {e.Value.Kinds}, expected at least {kinds}");
        Assert.Equal(Slot, e.Value.Slot);
        return e.Value;
    }

    public static string Describe(IEnumerable<DirtyInode> drained) =>
        string.Join("; ", drained.Select(e => $"{e.Dev}:{e.Ino} {e.Kinds} {e.Comm}/{e.Pid} x{e.Merged + 1}"));

    public static long NowNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    public void Dispose()
    {
        Shell.Dispose();
        Capture.Dispose();
        Scratch.Dispose();
    }
}
