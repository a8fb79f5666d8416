using System.Text;
using DiffKeeper.Cli.Tests.Harness;
using DiffKeeper.Cli.Tests.Native;

namespace DiffKeeper.Oci.Tests;

/// <summary>
/// A recording made by the real CLI from an overlay-style upper dir, laid over <see cref="BusyboxArchive"/>: at 0s a
/// copy-up of an image file, a whiteout of another, an opaque directory, a hard link, an xattr, a file owned by 12:34
/// with mode 0640, a symlink, an odd name (optionally hostile ones too); at 2s later content. Shared by the tests
/// that check a moment taken elsewhere (export --oci, replay) shows what `export --at 1s --out DIR` shows.
/// </summary>
public static class RecordedMoment
{
    public static string U(string text) => RawPath.FromUtf8(text);
    public const string OddName = "data/odd name\twith tab ünï";
    /// <summary>Names no tar or shell should mangle: a newline, bytes that are not UTF-8.</summary>
    public static readonly string NewlineName = "data/new\nline";
    public static readonly string NonUtf8Name = RawPath.FromBytes([.. "data/bad-"u8, 0xff, 0xfe]);
    public const string EscapeLink = "data/esc";

    /// <summary>
    /// Records the moments as "app"; with <paramref name="outside"/>, also the hostile entries: a symlink to that
    /// directory (outside any root), a name with a newline and one with non-UTF-8 bytes.
    /// </summary>
    public static string Record(DiffKeeperCli cli, string up, string? outside = null)
    {
        Posix.MkDir(up);
        Posix.MkDir(up + "/etc");
        Posix.WriteFile(up + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nextra:x:1:1::/:/bin/sh\n"u8);
        Posix.MkWhiteout(up + "/etc/gone");
        Posix.MkDir(up + "/opt");
        Posix.MkDir(up + "/opt/keep");
        Posix.SetXattr(up + "/opt/keep", "trusted.overlay.opaque", "y"u8);
        Posix.WriteFile(up + "/opt/keep/n", "new in an opaque dir\n"u8);
        Posix.MkDir(up + "/data");
        Posix.WriteFile(up + "/data/a", "hello at 0s\n"u8, 0b110_100_000);
        Posix.LChown(up + "/data/a", 12, 34);
        Posix.SetXattr(up + "/data/a", "user.note", "hi"u8);
        Posix.HardLink(up + "/data/a", up + "/data/b");
        Posix.Symlink("../etc/passwd", up + "/data/link");
        Posix.WriteFile(U(up + "/" + OddName), "odd\n"u8);
        Posix.MkDir(up + "/data/dir");
        Posix.WriteFile(up + "/data/dir/nested", "nested\n"u8, 0b111_101_101);
        if (outside is not null)
        {
            Posix.Symlink(outside, up + "/" + EscapeLink);
            Posix.WriteFile(U(up + "/" + NewlineName), "newline\n"u8);
            Posix.WriteFile(up + "/" + NonUtf8Name, "not utf-8\n"u8);
        }
        cli.Run("snapshot", up, "--recording", "app", "--at", "2026-11-30T10:00:00Z").ExpectOk();

        Posix.Unlink(up + "/data/b");
        Posix.Unlink(up + "/data/a");
        Posix.WriteFile(up + "/data/a", "changed at 2s\n"u8);
        Posix.Unlink(up + "/data/dir/nested");
        cli.Run("snapshot", up, "--recording", "app", "--at", "2s").ExpectOk();
        return up;
    }

    /// <summary>Every path of a directory export except whiteouts (what the container should see of the layer).</summary>
    public static List<string> VisiblePaths(string root, string rel = "")
    {
        var list = new List<string>();
        foreach (var name in Posix.ListDir(rel.Length == 0 ? root : root + "/" + rel))
        {
            var r = rel.Length == 0 ? name : rel + "/" + name;
            var st = Posix.LStat(root + "/" + r);
            if (st.Type == Posix.S_IFCHR && st.Rdev == 0) continue; // a whiteout
            list.Add(Encoding.UTF8.GetString(RawPath.ToBytes(r)));
            if (st.Type == Posix.S_IFDIR) list.AddRange(VisiblePaths(root, r));
        }
        return list;
    }

    // Run by busybox on both sides, so the output format is the same: type, mode, owner, links and content.
    public const string Describe = """
        for p in "$@"; do
          if [ -L "$p" ]; then echo "$p symlink $(readlink "$p")"
          elif [ -d "$p" ]; then stat -c '%n dir %a %u %g' "$p"
          else stat -c '%n %F %a %u %g %h' "$p"; md5sum < "$p"; fi
        done
        """;

    /// <summary>
    /// <see cref="Describe"/> for every entry below the directories given (the shell's globs see names as raw bytes:
    /// a newline or non-UTF-8 bytes pass, and each name is also given as its md5), whiteouts (char 0:0) skipped.
    /// </summary>
    public const string DescribeTree = """
        walk() {
          for p in "$1"/* "$1"/.[!.]*; do
            [ -e "$p" ] || [ -L "$p" ] || continue
            n=$(printf %s "$p" | md5sum)
            if [ -L "$p" ]; then echo "$n $p symlink $(readlink "$p")"
            elif [ -c "$p" ]; then continue
            elif [ -d "$p" ]; then echo "$n $(stat -c '%n dir %a %u %g' "$p")"; walk "$p"
            else echo "$n $(stat -c '%n %F %a %u %g %h %s' "$p") $(md5sum < "$p")"; fi
          done
        }
        for d in "$@"; do walk "$d"; done
        """;
}
