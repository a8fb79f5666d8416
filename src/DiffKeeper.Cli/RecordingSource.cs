using DiffKeeper.Store;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Pack;

namespace DiffKeeper.Cli;

/// <summary>A recording named on the command line: in the store (read-only) or in a packed file.</summary>
public sealed class RecordingSource : IDisposable
{
    public RecordingStore Store { get; }
    public RecordingInfo Recording { get; }

    private RecordingSource(RecordingStore store, RecordingInfo rec)
    {
        Store = store;
        Recording = rec;
    }

    private string? _tempFile;

    public static RecordingSource Open(CliContext ctx, string name)
    {
        if (Oci.OciRef.Is(name)) return OpenRemote(name);
        // A path to an existing file is a packed recording (ids and names never contain '/').
        bool isFile = File.Exists(name);
        if (isFile && (name.Contains('/') || PackReader.LooksLikePack(name))) return OpenPack(name);
        if (!RecordingStore.Exists(ctx.StoreDir))
        {
            if (isFile) return OpenPack(name);
            throw new NotFoundException($"no recording named {name} (no store at {ctx.StoreDir})");
        }
        var s = RecordingStore.Open(ctx.StoreDir, readOnly: true);
        try
        {
            var rec = s.FindByName(name);
            if (rec != null) return new RecordingSource(s, rec);
        }
        catch { s.Dispose(); throw; }
        s.Dispose();
        if (isFile) return OpenPack(name);
        throw new NotFoundException($"no recording named {name}");
    }

    private static RecordingSource OpenPack(string file)
    {
        var (store, rec) = PackReader.Open(file);
        return new RecordingSource(store, rec);
    }

    /// <summary>
    /// oci://HOST/REPO:TAG: the artifact is fetched (and verified) into a temporary packed file, removed again on
    /// dispose. Plain HTTP only for a registry on this machine (localhost, 127.0.0.0/8, ::1), as docker allows.
    /// </summary>
    private static RecordingSource OpenRemote(string name)
    {
        var r = Oci.OciRef.Parse(name);
        var host = r.Host.StartsWith('[') ? r.Host[..(r.Host.IndexOf(']') + 1)] : r.Host.Split(':')[0];
        bool local = host is "localhost" or "[::1]" || host.StartsWith("127.", StringComparison.Ordinal);
        var tmp = Path.Combine(Path.GetTempPath(), $"diffkeeper-pull-{Environment.ProcessId}-{Guid.NewGuid():N}.dkpack");
        try
        {
            PushVerb.Fetch(r, local, tmp);
            var src = OpenPack(tmp);
            src._tempFile = tmp;
            return src;
        }
        catch { File.Delete(tmp); throw; }
    }

    public void Dispose()
    {
        Store.Dispose();
        if (_tempFile is not null) File.Delete(_tempFile);
    }
}
