using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using Xunit;

namespace DiffKeeper.Store.Tests;

/// <summary>A file that keeps changing while IngestPath reads it: three attempts and a gap by default; with
/// oneAttempt (the recorder's live read of a large file), one read, nothing recorded, counted in Summary.Raced.</summary>
public sealed class RacingReadTests
{
    private static IngestSummary IngestWhileAppending(StoreFixture f, RecordingInfo rec, string up, bool oneAttempt)
    {
        var path = Path.Combine(up, "big.bin");
        File.WriteAllBytes(path, new byte[32 << 20]);
        using var stop = new ManualResetEventSlim();
        var writer = new Thread(() =>
        {
            using var fs = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1);
            var block = new byte[4096];
            // Appends until told to stop (a real writer racing the read), bounded so a slow read cannot fill the disk.
            // ~80 MB/s: it keeps changing through the reads without reaching the cap before they end.
            for (long written = 0; !stop.IsSet && written < (512L << 20); written += block.Length)
            {
                fs.Write(block);
                fs.Flush();
                var until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 20_000;
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
            }
        });
        writer.Start();
        try
        {
            Thread.Sleep(20);
            return new Ingester(f.Store).IngestPath(rec, up, "big.bin"u8.ToArray(), f.At(1), oneAttempt: oneAttempt);
        }
        finally { stop.Set(); writer.Join(); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_read_racing_an_appender_is_a_gap_or_with_one_attempt_nothing_counted_as_raced(bool oneAttempt)
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        var rec = f.NewRecording();
        var s = IngestWhileAppending(f, rec, up, oneAttempt);
        Assert.Equal(0, s.Changed);
        Assert.Null(f.Store.LatestVersionOf(rec.Id, "big.bin"u8, f.At(1)));
        var gaps = f.Store.ReadEvents(rec.Id).Count(e => e.Kind == EventKinds.Gap);
        if (oneAttempt)
        {
            Assert.Equal(1, s.Raced);
            Assert.Equal(0, gaps);
            Assert.InRange(s.BytesRead, 1, 64L << 20); // one read of the file as it was, not three
        }
        else
        {
            Assert.Equal(0, s.Raced);
            Assert.Equal(1, gaps);
        }
    }
}
