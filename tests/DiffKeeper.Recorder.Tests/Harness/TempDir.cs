namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>A private scratch directory under /var/tmp (a real disk file system: overlayfs wants xattrs and
/// d_type, which a small tmpfs /tmp may not give), removed on dispose whatever it holds.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string prefix = "dk-daemon-test-")
    {
        var baseDir = Directory.Exists("/var/tmp") ? "/var/tmp" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(baseDir, prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Sub(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try { Env.Run("rm", "-rf", "--one-file-system", Path); } catch (IOException) { }
    }
}
