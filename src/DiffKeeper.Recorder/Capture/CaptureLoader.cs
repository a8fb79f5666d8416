using DiffKeeper.Bpf;
using DiffKeeper.Common.Native;

namespace DiffKeeper.Recorder.Capture;

/// <summary>Finds and loads the eBPF object; a daemon that cannot load it still runs (exit states only) and says why.</summary>
internal static class CaptureLoader
{
    public const string ObjectName = "diffkeeper.bpf.o";

    /// <summary>The programs stay attached this long after the last container is untracked: containers run one
    /// after another (a CI job's steps, bench-shim) then pay neither the detach in Delete nor the attach in Create,
    /// while an idle node stops paying for the programs (every page dirtied on the node runs one) soon after.</summary>
    public static readonly TimeSpan DetachLinger = TimeSpan.FromSeconds(10);

    /// <summary>--bpf-object / bpf_object, else beside the executable, else /usr/lib/diffkeeper.</summary>
    public static IEnumerable<string> Candidates(string? configured)
    {
        if (!string.IsNullOrEmpty(configured)) { yield return configured; yield break; }
        // The places ChangeCapture.FindObject looks, in its order: beside the executable, the install layout
        // ($PREFIX/bin → $PREFIX/lib/diffkeeper), then the packaged locations.
        var exeDir = AppContext.BaseDirectory;
        yield return Path.Combine(exeDir, ObjectName);
        yield return Path.GetFullPath(Path.Combine(exeDir, "..", "lib", "diffkeeper", ObjectName));
        yield return Path.Combine("/usr/local/lib/diffkeeper", ObjectName);
        yield return Path.Combine("/usr/lib/diffkeeper", ObjectName);
    }

    public static IChangeSource Load(string? configured, int capacity, Action<string> log)
    {
        var tried = Candidates(configured).ToList();
        var path = tried.FirstOrDefault(File.Exists);
        if (path == null)
        {
            var reason = $"no eBPF object ({string.Join(", ", tried)} not found)";
            log("live capture off: " + reason);
            return new NoChangeSource(reason);
        }
        return LoadObject(path, capacity, log);
    }

    private static IChangeSource LoadObject(string path, int capacity, Action<string> log)
    {
        try
        {
            var capture = ChangeCapture.Load(path, capacity);
            capture.DetachLinger = DetachLinger;
            log($"eBPF capture loaded from {path} with {Libbpf.Get().Source} (dirty set of {capture.DirtySetCapacity} inodes; " +
                $"attached while a container is tracked and {DetachLinger.TotalSeconds:0} s after the last)");
            return new BpfChangeSource(capture);
        }
        catch (BpfException e)
        {
            log("live capture off: " + e.Message);
            return new NoChangeSource(e.Message);
        }
        catch (DllNotFoundException e)
        {
            var reason = $"no libbpf.so.1 loads ({Libbpf.Get().Source}; apt-get install libbpf1, or reinstall the package, which bundles one): {e.Message}";
            log("live capture off: " + reason);
            return new NoChangeSource(reason);
        }
    }
}
