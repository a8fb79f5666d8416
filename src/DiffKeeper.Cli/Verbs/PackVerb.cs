using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Output;
using DiffKeeper.Store.Pack;

namespace DiffKeeper.Cli;

public static class PackVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        var file = a.Value("output") ?? throw new Store.UsageException("pack needs -o FILE");
        using var src = RecordingSource.Open(ctx, a.Positionals[0]);
        var progress = ctx.Progress;
        long size = PackWriter.Write(src.Store, src.Recording, file,
            p => progress.Report(() => $"pack: {p.Chunks}/{p.TotalChunks} chunks, {Human.Bytes(p.Bytes)}"));
        progress.Done();
        if (a.Json)
            ctx.Out.Json(w => { w.WriteString("recording", src.Recording.IdText); w.WriteString("file", file); w.WriteNumber("bytes", size); });
        else
            ctx.Out.Line($"packed recording {src.Recording.IdText} into {file} ({Human.Bytes(size)})");
        return 0;
    }
}
