namespace DiffKeeper.Bpf.Tests.Infrastructure;

/// <summary>A directory on a disk file system (/var/tmp, not a tmpfs /tmp: tmpfs has no writeback, so no page or
/// inode ever becomes "dirty" there), removed with everything in it.</summary>
public sealed class ScratchDir : IDisposable
{
    public ScratchDir()
    {
        Path = System.IO.Path.Combine("/var/tmp", $"dk-bpf-test-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
