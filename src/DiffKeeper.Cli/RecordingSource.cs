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

    public static RecordingSource Open(CliContext ctx, string name)
    {
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

    public void Dispose() => Store.Dispose();
}
