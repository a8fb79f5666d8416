using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Cli.Tests.Harness;

/// <summary>A private scratch directory, removed (whatever it holds) on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string prefix = "dk-cli-test-")
    {
        // /var/tmp: same disk as the bench, not a small tmpfs, and xattrs (user.*, trusted.*) work there.
        var baseDir = Directory.Exists("/var/tmp") ? "/var/tmp" : System.IO.Path.GetTempPath();
        Path = System.IO.Path.Combine(baseDir, prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Posix.RemoveTree(Path); } catch (IOException) { }
    }
}
