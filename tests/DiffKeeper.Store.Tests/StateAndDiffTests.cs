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
        var v1 = f.Temp.CreateSub("v1");
        Tree.WriteFile(v1, "conf", "one");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.CreateSub("v2");
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
    public void A_path_absent_from_the_upper_dir_is_deleted_at_that_moment_and_takes_its_subtree_along()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.CreateSub("v1");
        Tree.Mkdir(v1, "dir/sub");
        Tree.WriteFile(v1, "dir/sub/f", "f");
        Tree.WriteFile(v1, "dir/g", "g");
        Tree.WriteFile(v1, "keep", "k");
        Tree.WriteFile(v1, "gone", "g");
        f.Snapshot(rec, v1, 1);

        // The upper dir is the whole change set: "gone" and "dir" were removed by the container (no whiteouts).
        File.Delete(Path.Combine(v1, "gone"));
        Directory.Delete(Path.Combine(v1, "dir"), recursive: true);
        f.Snapshot(rec, v1, 2);
        var s2 = StateQuery.At(f.Store, rec.Id, f.At(2));
        Assert.Null(s2.Get("gone"u8));
        Assert.Null(s2.Get("dir/sub/f"u8)); // hidden through its absent grandparent
        Assert.Null(StateQuery.Find(f.Store, rec.Id, "dir/sub/f"u8, f.At(2)));
        Assert.NotNull(s2.Get("keep"u8));
        Assert.NotNull(StateQuery.At(f.Store, rec.Id, f.At(1.9)).Get("dir/sub/f"u8));
        // Absences, not whiteouts (an export must not write a whiteout where the upper layer had nothing), and one
        // for the topmost missing directory is enough.
        Assert.Equal(EntryType.Absent, s2.Tombstones["gone"].Type);
        Assert.Equal(EntryType.Absent, s2.Tombstones["dir"].Type);
        var deletes = TimelineQuery.Rows(f.Store, rec.Id, f.At(2), f.At(2), null).Where(r => r.Kind == "delete").Select(r => RawPath.Key(r.Path));
        Assert.Equal(["dir", "gone"], deletes.Order(StringComparer.Ordinal).ToArray());
        var d12 = DiffQuery.Between(f.Store, rec.Id, f.At(1), f.At(2)).Where(r => r.Change == ChangeKind.Deleted).Select(r => RawPath.Key(r.Path));
        Assert.Contains("gone", d12);
        Assert.Contains("dir/sub/f", d12);

        // Re-created under the same name later: visible again, the old children stay gone.
        Tree.Mkdir(v1, "dir");
        f.Snapshot(rec, v1, 3);
        var s3 = StateQuery.At(f.Store, rec.Id, f.At(3));
        Assert.NotNull(s3.Get("dir"u8));
        Assert.Null(s3.Get("dir/g"u8));
        // An unchanged snapshot writes nothing (the absence pass compares against the state, not the history).
        Assert.Equal(0, f.Snapshot(rec, v1, 4).Changed);
    }

    [Fact]
    public void The_single_path_API_records_absence_and_vanished_children()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var up = f.Temp.CreateSub("up");
        Tree.Mkdir(up, "d/sub");
        Tree.WriteFile(up, "d/a", "a");
        Tree.WriteFile(up, "d/b", "b");
        Tree.WriteFile(up, "d/sub/c", "c");
        Tree.WriteFile(up, "x", "x");
        f.Snapshot(rec, up, 1);
        var ing = new Ingester(f.Store);

        // The daemon saw d change: a and sub vanished from it.
        File.Delete(Path.Combine(up, "d/a"));
        Directory.Delete(Path.Combine(up, "d/sub"), recursive: true);
        ing.IngestPath(rec, up, "d"u8.ToArray(), f.At(2));
        var s2 = StateQuery.At(f.Store, rec.Id, f.At(2));
        Assert.Null(s2.Get("d/a"u8));
        Assert.Null(s2.Get("d/sub/c"u8));
        Assert.NotNull(s2.Get("d/b"u8));
        Assert.Equal(EntryType.Absent, s2.Tombstones["d/a"].Type);

        // A path that is gone when captured, and RecordDeleted: absences too.
        File.Delete(Path.Combine(up, "x"));
        ing.IngestPath(rec, up, "x"u8.ToArray(), f.At(3));
        ing.RecordDeleted(rec, "d/b"u8.ToArray(), f.At(3));
        ing.RecordDeleted(rec, "never-recorded"u8.ToArray(), f.At(3)); // nothing to delete: no record
        var s3 = StateQuery.At(f.Store, rec.Id, f.At(3));
        Assert.Equal(EntryType.Absent, s3.Tombstones["x"].Type);
        Assert.Equal(EntryType.Absent, s3.Tombstones["d/b"].Type);
        Assert.False(s3.Tombstones.ContainsKey("never-recorded"));
        Assert.Null(s3.Get("d/b"u8));
    }

    [SkippableFact]
    public void A_deleted_image_file_stays_a_whiteout_and_an_absence_can_become_one()
    {
        Integration.RequireRoot("a whiteout (char 0:0) needs root");
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var up = f.Temp.CreateSub("up");
        Tree.WriteFile(up, "etc.conf", "copied up");
        f.Snapshot(rec, up, 1);
        File.Delete(Path.Combine(up, "etc.conf"));
        f.Snapshot(rec, up, 2);
        Assert.Equal(EntryType.Absent, StateQuery.At(f.Store, rec.Id, f.At(2)).Tombstones["etc.conf"].Type);
        // Same name, now a whiteout (the path exists in a lower layer): the upper layer changed, so does the state.
        Tree.Whiteout(up, "etc.conf");
        Tree.Whiteout(up, "image-only");
        f.Snapshot(rec, up, 3);
        var s3 = StateQuery.At(f.Store, rec.Id, f.At(3));
        Assert.Equal(EntryType.Whiteout, s3.Tombstones["etc.conf"].Type);
        Assert.Equal(EntryType.Whiteout, s3.Tombstones["image-only"].Type);
        var kinds = TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, null).Select(r => r.Kind + " " + RawPath.Key(r.Path)).ToArray();
        Assert.Equal(["version etc.conf", "delete etc.conf", "whiteout etc.conf", "whiteout image-only"], kinds);
        Assert.Equal(0, f.Snapshot(rec, up, 4).Changed); // whiteouts already recorded are not new
        // A whiteout that is no longer in the upper directory is no longer in the state's upper layer either.
        File.Delete(Path.Combine(up, "image-only"));
        f.Snapshot(rec, up, 5);
        Assert.Equal(EntryType.Absent, StateQuery.At(f.Store, rec.Id, f.At(5)).Tombstones["image-only"].Type);
        Assert.Equal(EntryType.Whiteout, StateQuery.At(f.Store, rec.Id, f.At(5)).Tombstones["etc.conf"].Type);
        // Deleted at 3 and at 5 (the image's file shows again through the vanished whiteout): no row either way.
        Assert.Empty(DiffQuery.Between(f.Store, rec.Id, f.At(3), f.At(5)));
        Assert.Empty(DiffQuery.Between(f.Store, rec.Id, f.At(5), f.At(5)));
    }

    [Fact]
    public void Opaque_directory_hides_what_it_replaced_but_keeps_what_it_holds()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.CreateSub("v1");
        Tree.Mkdir(v1, "d");
        Tree.WriteFile(v1, "d/old", "old");
        Tree.WriteFile(v1, "d/stays", "same");
        f.Snapshot(rec, v1, 1);

        // rm -rf d; mkdir d; recreate one file: overlay marks d opaque (user.overlay.* works without root).
        var v2 = f.Temp.CreateSub("v2");
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
        Integration.RequireRoot("a whiteout (char 0:0) needs root");
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.CreateSub("v1");
        Tree.WriteFile(v1, "x", "x");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.CreateSub("v2");
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
        var v1 = f.Temp.CreateSub("v1");
        Tree.WriteFile(v1, "mod", "a");
        Tree.WriteFile(v1, "del", "d");
        Tree.WriteFile(v1, "chmod", "c");
        Tree.WriteFile(v1, "old-name", "moving content");
        f.Snapshot(rec, v1, 1);

        var v2 = f.Temp.CreateSub("v2");
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

    [SkippableFact]
    public void Diff_compares_the_two_states_not_the_versions_between_them()
    {
        Integration.RequireRoot("a whiteout (char 0:0) needs root");
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.CreateSub("v1");
        Tree.WriteFile(v1, "base", "b");
        f.Snapshot(rec, v1, 1);

        // Created at 2, renamed away at 3: absent at 1 and at 3, so not a row of diff 1 3.
        // A file of the image (never captured): deleted at 2, recreated at 2.5, deleted again at 3. It existed at 1
        // (in the lower layer) and not at 3: deleted in diff 1 3, and absent at both ends of diff 2 3.
        var v2 = f.Temp.CreateSub("v2");
        Tree.WriteFile(v2, "base", "b");
        Tree.WriteFile(v2, "tmp", "short-lived content");
        Tree.Whiteout(v2, "image-file");
        f.Snapshot(rec, v2, 2);
        var v25 = f.Temp.CreateSub("v25");
        Tree.WriteFile(v25, "base", "b");
        Tree.WriteFile(v25, "tmp", "short-lived content");
        Tree.WriteFile(v25, "image-file", "again");
        f.Snapshot(rec, v25, 2.5);
        var v3 = f.Temp.CreateSub("v3");
        Tree.WriteFile(v3, "base", "b");
        Tree.WriteFile(v3, "final", "short-lived content");
        Tree.Whiteout(v3, "image-file");
        f.Snapshot(rec, v3, 3);

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
    public void A_renamed_directory_is_one_absence_and_its_files_pair_up_by_inode()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var up = f.Temp.CreateSub("up");
        Tree.Mkdir(up, "old/deep");
        Tree.WriteFile(up, "old/deep/f", "content that moves");
        f.Snapshot(rec, up, 1);
        Directory.Move(Path.Combine(up, "old"), Path.Combine(up, "new"));
        Tree.WriteFile(up, "new/deep/f", "content that moves, then changed"); // same inode (opened for writing)
        f.Snapshot(rec, up, 2);

        var s2 = StateQuery.At(f.Store, rec.Id, f.At(2));
        Assert.Null(s2.Get("old/deep/f"u8));
        Assert.NotNull(s2.Get("new/deep/f"u8));
        Assert.Single(TimelineQuery.Rows(f.Store, rec.Id, f.At(2), f.At(2), null), r => r.Kind == "delete");
        var rows = DiffQuery.Between(f.Store, rec.Id, f.At(1), f.At(2)).ToDictionary(r => RawPath.Key(r.Path), r => r);
        Assert.Equal(ChangeKind.Renamed, rows["new"].Change);
        Assert.Equal("old"u8.ToArray(), rows["new"].FromPath);
        Assert.Equal(ChangeKind.Renamed, rows["new/deep"].Change);
        // A file whose content changed on the way is not proven the same by its inode alone (inodes are reused).
        Assert.Equal(ChangeKind.Added, rows["new/deep/f"].Change);
        Assert.Equal(ChangeKind.Deleted, rows["old/deep/f"].Change);
    }

    [Fact]
    public void Timeline_filters_by_glob_and_time_and_shows_events_and_gaps()
    {
        using var f = new StoreFixture();
        var rec = f.NewRecording();
        var v1 = f.Temp.CreateSub("v1");
        Tree.Mkdir(v1, "var/log/app");
        Tree.WriteFile(v1, "var/log/app/a.log", "1");
        Tree.WriteFile(v1, "etc.conf", "1");
        f.Snapshot(rec, v1, 1);
        var v2 = f.Temp.CreateSub("v2");
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
        // Not in the second snapshot: deleted at 2.
        Assert.Equal(["version", "delete"], TimelineQuery.Rows(f.Store, rec.Id, long.MinValue, long.MaxValue, new PathGlob("*.conf")).Select(r => r.Kind).ToArray());

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
        var v1 = f.Temp.CreateSub("v1");
        Tree.Mkdir(v1, "d");
        Tree.WriteFile(v1, "d/f", "inside");
        f.Snapshot(rec, v1, 0);
        var v2 = f.Temp.CreateSub("v2");
        File.CreateSymbolicLink(Path.Combine(v2, "d"), "/etc");
        f.Snapshot(rec, v2, 1);

        var s1 = Query.StateQuery.At(f.Store, rec.Id, f.At(1));
        Assert.Equal(Model.EntryType.Symlink, s1.Get("d"u8)!.Type);
        Assert.Null(s1.Get("d/f"u8));
        Assert.Null(Query.StateQuery.Find(f.Store, rec.Id, "d/f"u8, f.At(1)));
        Assert.NotNull(Query.StateQuery.At(f.Store, rec.Id, f.At(0)).Get("d/f"u8));
    }
}
