using System.Diagnostics;
using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;
using Xunit;

namespace DiffKeeper.Store.Tests;

/// <summary>
/// Overlay features that change what an upper directory holds, on a real kernel overlay mount: a metadata-only
/// copy-up (metacopy=on) has no data in the upper file, a renamed lower directory (redirect_dir=on) is an upper
/// directory pointing at the old lower path.
/// </summary>
public sealed class OverlayFeatureTests : IDisposable
{
    private readonly StoreFixture _f = new();
    private readonly string _lower, _upper, _merged;
    private bool _mounted;

    public OverlayFeatureTests()
    {
        _lower = _f.Temp.CreateSub("lower");
        _upper = _f.Temp.CreateSub("upper");
        _merged = _f.Temp.CreateSub("merged");
        _f.Temp.CreateSub("work");
    }

    private void Mount(string options)
    {
        Integration.RequireRoot("mounting an overlay needs root");
        Run("mount", "-t", "overlay", "overlay", "-o",
            $"lowerdir={_lower},upperdir={_upper},workdir={Path.Combine(_f.Temp.Path, "work")},{options}", _merged);
        _mounted = true;
    }

    private static void Run(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(args[0], args[1..]) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new IOException($"{string.Join(' ', args)}: exit {p.ExitCode}: {err}");
    }

    [SkippableFact]
    public void A_metadata_only_copy_up_is_read_from_the_merged_view_or_recorded_as_a_gap_never_as_zeros()
    {
        var content = Tree.Random(100_000, 5);
        Tree.WriteFile(_lower, "bin"u8, content, 0x1ed);
        Mount("redirect_dir=on,metacopy=on");
        // chmod 0500 through the merged view: a metadata-only change, so the kernel copies up metadata only.
        unsafe
        {
            fixed (byte* p = Tree.Z(_merged, "bin"u8))
                Assert.Equal(0, Native.Libc.fchmodat(Native.Libc.AT_FDCWD, p, 0x140, 0));
        }

        var probe = Native.Xattrs.Read(-1, Tree.Z(_upper, "bin"u8));
        Assert.Contains(probe, x => x.Key.AsSpan().SequenceEqual("trusted.overlay.metacopy"u8)); // the kernel did a metacopy

        var rec = _f.NewRecording();
        new Ingester(_f.Store).IngestTree(rec, _upper, _f.At(1));
        var bare = StateQuery.Find(_f.Store, rec.Id, "bin"u8, _f.At(1))!;
        Assert.Equal(0x140u, bare.Mode);
        Assert.Contains(bare.Xattrs, x => x.Key.AsSpan().SequenceEqual("trusted.overlay.metacopy"u8));
        Assert.True(bare.Chunks.TrueForAll(c => c.IsHole), "the upper file's blocks are not its data");
        Assert.Contains(_f.Store.ReadEvents(rec.Id), e => e.Kind == EventKinds.Gap && e.Path.AsSpan().SequenceEqual("bin"u8) &&
                                                          e.Detail!.Contains("metacopy"));

        var rec2 = _f.NewRecording("with-merged");
        new Ingester(_f.Store) { MergedRoot = _merged }.IngestTree(rec2, _upper, _f.At(1));
        var whole = StateQuery.Find(_f.Store, rec2.Id, "bin"u8, _f.At(1))!;
        Assert.Equal(content, _f.Read(whole));
        Assert.Equal(0x140u, whole.Mode);
        Assert.DoesNotContain(whole.Xattrs, x => x.Key.AsSpan().StartsWith("trusted.overlay."u8));
        Assert.DoesNotContain(_f.Store.ReadEvents(rec2.Id), e => e.Kind == EventKinds.Gap);
    }

    [SkippableFact]
    public void A_renamed_lower_directory_keeps_its_redirect_and_the_old_name_is_a_whiteout()
    {
        Tree.Mkdir(_lower, "old");
        Tree.WriteFile(_lower, "old/f", "from the image");
        Mount("redirect_dir=on");
        Directory.Move(Path.Combine(_merged, "old"), Path.Combine(_merged, "new"));

        var rec = _f.NewRecording();
        new Ingester(_f.Store).IngestTree(rec, _upper, _f.At(1));
        var s = StateQuery.At(_f.Store, rec.Id, _f.At(1));
        Assert.Equal(EntryType.Whiteout, s.Tombstones["old"].Type);
        var dir = s.Get("new"u8)!;
        var redirect = Assert.Single(dir.Xattrs, x => x.Key.AsSpan().SequenceEqual("trusted.overlay.redirect"u8));
        Assert.EndsWith("old", System.Text.Encoding.UTF8.GetString(redirect.Value));
    }

    public void Dispose()
    {
        if (_mounted)
        {
            try { Run("umount", _merged); } catch (IOException) { Run("umount", "-l", _merged); }
        }
        _f.Dispose();
    }
}
