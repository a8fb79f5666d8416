using DiffKeeper.Store.Ingest;
using DiffKeeper.Store.Model;
using DiffKeeper.Store.Query;
using Xunit;

namespace DiffKeeper.Store.Tests;

public class StateAndDiffTests
{
    [Fact]
    public void State_at_T_is_each_paths_newest_version_at_or_before_T()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.WriteFile(v1, "conf", "one");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.Sub("v2");
        Tree.WriteFile(v2, "conf", "two");
        Tree.WriteFile(v2, "new", "n");
        f.Snapshot(rec, v2, 2);

        Assert.Equal("one"u8.ToArray(), f.Read(StateQuery.Find(f.Store, rec.Id, "conf"u8, f.At(1.5))!));
        Assert.Equal("two"u8.ToArray(), f.Read(StateQuery.Find(f.Store, rec.Id, "conf"u8, f.At(2))!));
        Assert.Null(StateQuery.Find(f.Store, rec.Id, "new"u8, f.At(1.999)));
        Assert.Null(StateQuery.Find(f.Store, rec.Id, "conf"u8, f.At(0.5)));
        Assert.Equal(2, StateQuery.At(f.Store, rec.Id, f.At(2)).Entries.Count);
    }

    [Fact]
    public void Absent_is_not_deleted_but_a_whiteout_or_a_deleted_parent_is()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.Mkdir(v1, "dir/sub");
        Tree.WriteFile(v1, "dir/sub/f", "f");
        Tree.WriteFile(v1, "keep", "k");
        Tree.WriteFile(v1, "gone", "g");
        f.Snapshot(rec, v1, 1);

        var v2 = f.Temp.Sub("v2"); // an upper layer holds only changes: "keep" absent = unchanged
        Tree.WriteFile(v2, "other", "o");
        f.Snapshot(rec, v2, 2);
        Assert.NotNull(StateQuery.Find(f.Store, rec.Id, "keep"u8, f.At(2)));

        var ing = new Ingester(f.Store);
        ing.RecordDeleted(rec, "gone"u8.ToArray(), f.At(3));
        ing.RecordDeleted(rec, "dir"u8.ToArray(), f.At(3));
        var s3 = StateQuery.At(f.Store, rec.Id, f.At(3));
        Assert.Null(s3.Get("gone"u8));
        Assert.Null(s3.Get("dir/sub/f"u8)); // hidden through its deleted grandparent
        Assert.Null(StateQuery.Find(f.Store, rec.Id, "dir/sub/f"u8, f.At(3)));
        Assert.NotNull(StateQuery.At(f.Store, rec.Id, f.At(2.9)).Get("dir/sub/f"u8));
        Assert.NotNull(s3.Get("keep"u8));
    }

    [Fact]
    public void Opaque_directory_hides_what_it_replaced_but_keeps_what_it_holds()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.Mkdir(v1, "d");
        Tree.WriteFile(v1, "d/old", "old");
        Tree.WriteFile(v1, "d/stays", "same");
        f.Snapshot(rec, v1, 1);

        // rm -rf d; mkdir d; recreate one file: overlay marks d opaque (user.overlay.* works without root).
        var v2 = f.Temp.Sub("v2");
        Tree.Mkdir(v2, "d");
        Tree.SetXattr(v2, "d", "user.overlay.opaque", "y"u8.ToArray());
        Tree.WriteFile(v2, "d/stays", "same");
        f.Snapshot(rec, v2, 2);

        var s2 = StateQuery.At(f.Store, rec.Id, f.At(2));
        Assert.Null(s2.Get("d/old"u8));
        Assert.NotNull(s2.Get("d/stays"u8));
        Assert.True(s2.Get("d"u8)!.Opaque);
        Assert.Empty(s2.Get("d"u8)!.Xattrs); // overlay plumbing is not a user xattr
        Assert.NotNull(StateQuery.At(f.Store, rec.Id, f.At(1)).Get("d/old"u8));
        var rows = TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, null);
        Assert.Contains(rows, r => r.Kind == "opaque" && r.Path.AsSpan().SequenceEqual("d"u8));
    }

    [SkippableFact]
    public void Whiteout_device_in_the_upper_dir_deletes_the_path()
    {
        Skip.IfNot(Tree.IsRoot || Environment.GetEnvironmentVariable("DIFFKEEPER_REQUIRE_INTEGRATION") == "1", "a whiteout (char 0:0) needs root");
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.WriteFile(v1, "x", "x");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.Sub("v2");
        Tree.Whiteout(v2, "x");
        Tree.Whiteout(v2, "from-image");
        f.Snapshot(rec, v2, 2);
        Assert.Null(StateQuery.Find(f.Store, rec.Id, "x"u8, f.At(2)));
        var diff = DiffQuery.Between(f.Store, rec.Id, f.At(1), f.At(2));
        Assert.Contains(diff, d => d.Change == ChangeKind.Deleted && d.Path.AsSpan().SequenceEqual("x"u8));
        Assert.Contains(diff, d => d.Change == ChangeKind.Deleted && d.Path.AsSpan().SequenceEqual("from-image"u8));
    }

    [Fact]
    public void Diff_reports_added_modified_deleted_renamed_and_metadata()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.WriteFile(v1, "mod", "a");
        Tree.WriteFile(v1, "del", "d");
        Tree.WriteFile(v1, "chmod", "c");
        Tree.WriteFile(v1, "old-name", "moving content");
        f.Snapshot(rec, v1, 1);

        var v2 = f.Temp.Sub("v2");
        Tree.WriteFile(v2, "mod", "b");
        Tree.WriteFile(v2, "added", "+");
        Tree.WriteFile(v2, "chmod"u8, "c"u8, 0x1ff);
        Tree.WriteFile(v2, "new-name", "moving content");
        f.Snapshot(rec, v2, 2);
        var ing = new Ingester(f.Store);
        ing.RecordDeleted(rec, "del"u8.ToArray(), f.At(2));
        ing.RecordDeleted(rec, "old-name"u8.ToArray(), f.At(2));

        var rows = DiffQuery.Between(f.Store, rec.Id, f.At(1), f.At(2))
            .ToDictionary(r => RawPath.Key(r.Path), r => r);
        Assert.Equal(ChangeKind.Modified, rows["mod"].Change);
        Assert.Equal(ChangeKind.Added, rows["added"].Change);
        Assert.Equal(ChangeKind.Deleted, rows["del"].Change);
        Assert.Equal(ChangeKind.Metadata, rows["chmod"].Change);
        Assert.Equal(ChangeKind.Renamed, rows["new-name"].Change);
        Assert.Equal("old-name"u8.ToArray(), rows["new-name"].FromPath);
        Assert.False(rows.ContainsKey("old-name"));
        Assert.Empty(DiffQuery.Between(f.Store, rec.Id, f.At(2), f.At(2)));
    }

    [Fact]
    public void Diff_compares_the_two_states_not_the_versions_between_them()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var ing = new Ingester(f.Store);
        var v1 = f.Temp.Sub("v1");
        Tree.WriteFile(v1, "base", "b");
        f.Snapshot(rec, v1, 1);

        // Created at 2, renamed away at 3: absent at 1 and at 3, so not a row of diff 1 3.
        var v2 = f.Temp.Sub("v2");
        Tree.WriteFile(v2, "tmp", "short-lived content");
        f.Snapshot(rec, v2, 2);
        var v3 = f.Temp.Sub("v3");
        Tree.WriteFile(v3, "final", "short-lived content");
        f.Snapshot(rec, v3, 3);
        ing.RecordDeleted(rec, "tmp"u8.ToArray(), f.At(3));
        // A file of the image (never captured): deleted at 2, recreated at 2.5, deleted again at 3. It existed at 1
        // (in the lower layer) and not at 3: deleted in diff 1 3, and absent at both ends of diff 2 3.
        ing.RecordDeleted(rec, "image-file"u8.ToArray(), f.At(2));
        var v25 = f.Temp.Sub("v25");
        Tree.WriteFile(v25, "image-file", "again");
        f.Snapshot(rec, v25, 2.5);
        ing.RecordDeleted(rec, "image-file"u8.ToArray(), f.At(3));

        var d13 = DiffQuery.Between(f.Store, rec.Id, f.At(1), f.At(3)).ToDictionary(r => RawPath.Key(r.Path), r => r.Change);
        Assert.False(d13.ContainsKey("tmp"), "a path absent at both moments is not a change");
        Assert.Equal(ChangeKind.Added, d13["final"]);
        Assert.Equal(ChangeKind.Deleted, d13["image-file"]);
        Assert.Equal(2, d13.Count);

        var d23 = DiffQuery.Between(f.Store, rec.Id, f.At(2), f.At(3)).ToDictionary(r => RawPath.Key(r.Path), r => r.Change);
        Assert.False(d23.ContainsKey("image-file"), "deleted at 2 already: absent at both moments");
        Assert.Equal(ChangeKind.Renamed, d23["final"]);
        Assert.Single(d23);
        Assert.Equal(ChangeKind.Added, Assert.Single(DiffQuery.Between(f.Store, rec.Id, f.At(2.2), f.At(2.5))).Change);
    }

    [Fact]
    public void Timeline_filters_by_glob_and_time_and_shows_events_and_gaps()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.Mkdir(v1, "var/log/app");
        Tree.WriteFile(v1, "var/log/app/a.log", "1");
        Tree.WriteFile(v1, "etc.conf", "1");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.Sub("v2");
        Tree.Mkdir(v2, "var/log/app");
        Tree.WriteFile(v2, "var/log/app/a.log", "12");
        f.Snapshot(rec, v2, 2);
        f.Store.AddEvents(rec,
        [
            new RecordedEvent { Time = f.At(1.5), Kind = "write", Path = "var/log/app/a.log"u8.ToArray(), Pid = 42, Comm = "app" },
            new RecordedEvent { Time = f.At(1.6), Kind = EventKinds.Gap, Detail = "ring buffer full" },
            new RecordedEvent { Time = f.At(3), Kind = EventKinds.Exit, Detail = "1" },
        ]);

        var logs = TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, new PathGlob("/var/**/*.log"));
        Assert.Equal(["version", "write", "version"], logs.Select(r => r.Kind).ToArray());
        Assert.Equal(42, logs[1].Event!.Pid);
        var window = TimelineQuery.Rows(f.Store, rec.Id, f.At(1.2), f.At(2), null);
        Assert.Equal(["write", "gap"], window.Where(r => r.Version == null).Select(r => r.Kind).ToArray());
        Assert.All(window, r => Assert.InRange(r.Time, f.At(1.2), f.At(2)));
        Assert.Empty(TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, new PathGlob("etc/*.log")));
        Assert.Single(TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, new PathGlob("*.conf")));

        var reread = f.Store.GetRecording(rec.Id)!;
        Assert.Equal(1, reread.ExitStatus);
        Assert.Equal(f.At(3), reread.End);
    }
}

public class ReplacedDirectoryTests
{
    [Fact]
    public void A_directory_replaced_by_a_symlink_takes_its_old_children_with_it()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.Sub("v1");
        Tree.Mkdir(v1, "d");
        Tree.WriteFile(v1, "d/f", "inside");
        f.Snapshot(rec, v1, 0);
        var v2 = f.Temp.Sub("v2");
        File.CreateSymbolicLink(Path.Combine(v2, "d"), "/etc");
        f.Snapshot(rec, v2, 1);

        var s1 = Query.StateQuery.At(f.Store, rec.Id, f.At(1));
        Assert.Equal(Model.EntryType.Symlink, s1.Get("d"u8)!.Type);
        Assert.Null(s1.Get("d/f"u8));
        Assert.Null(Query.StateQuery.Find(f.Store, rec.Id, "d/f"u8, f.At(1)));
        Assert.NotNull(Query.StateQuery.At(f.Store, rec.Id, f.At(0)).Get("d/f"u8));
    }
}
