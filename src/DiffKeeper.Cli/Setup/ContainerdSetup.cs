using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace DiffKeeper.Cli.Setup;

/// <summary>The outcome of a setup or undo, for printing.</summary>
public sealed class SetupOutcome
{
    public required string ConfigPath { get; init; }
    public int ConfigVersion { get; init; }
    public bool Changed { get; init; }
    public bool DryRun { get; init; }
    public bool Undo { get; init; }
    public string? Backup { get; init; }
    public string Diff { get; init; } = "";
    public List<string> Notes { get; init; } = new();
    /// <summary>containerd reads its config only at start: any change needs a restart.</summary>
    public bool RestartNeeded => Changed;
}

/// <summary>
/// The file side of `diffkeeper setup containerd`: backups, atomic writes, undo. Backups sit beside the file:
/// <c>FILE.diffkeeper-backup</c> holds the bytes before setup, <c>FILE.diffkeeper-created</c> marks a file setup
/// created (undo deletes it).
/// </summary>
public static class ContainerdSetup
{
    /// <summary>0644, containerd's own config mode, for files setup creates.</summary>
    private const UnixFileMode DefaultMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public const string DefaultConfig = "/etc/containerd/config.toml";
    public const string BackupSuffix = ".diffkeeper-backup";
    public const string CreatedSuffix = ".diffkeeper-created";

    public static SetupOutcome Apply(string configPath, Version? containerdVersion, string optionsFile, bool dryRun)
    {
        var (original, bom) = Read(configPath);
        var plan = ContainerdConfigEditor.Plan(original, containerdVersion, optionsFile);
        var diff = new StringBuilder(TextDiff.Unified(original ?? "", plan.NewText, original == null ? "/dev/null" : configPath, configPath));
        string? currentOptions = null;
        bool writeOptions = false;
        if (plan.OptionsFileText != null)
        {
            currentOptions = Read(optionsFile).Text;
            writeOptions = currentOptions != plan.OptionsFileText;
            if (writeOptions) diff.Append(TextDiff.Unified(currentOptions ?? "", plan.OptionsFileText, currentOptions == null ? "/dev/null" : optionsFile, optionsFile));
        }
        string? backup = null;
        if (plan.Changed && !dryRun)
        {
            if (writeOptions)
            {
                SaveOriginal(optionsFile, currentOptions, false);
                WriteAtomic(optionsFile, plan.OptionsFileText!, false, DefaultMode);
            }
            backup = SaveOriginal(configPath, original, bom);
            WriteAtomic(configPath, plan.NewText, bom, DefaultMode);
        }
        return new SetupOutcome
        {
            ConfigPath = configPath, ConfigVersion = plan.ConfigVersion, Changed = plan.Changed, DryRun = dryRun,
            Backup = backup, Diff = diff.ToString(), Notes = plan.Notes,
        };
    }

    public static SetupOutcome Undo(string configPath, Version? containerdVersion, string optionsFile, bool dryRun)
    {
        string backupPath = configPath + BackupSuffix, createdPath = configPath + CreatedSuffix;
        bool created = File.Exists(createdPath);
        if (!created && !File.Exists(backupPath))
            throw new DiffKeeper.Store.NotFoundException($"nothing to undo: no {backupPath} (setup made no change to {configPath}, or it was undone already)");
        var (current, bom) = Read(configPath);
        string? original = created ? null : Read(backupPath).Text;
        // Only an unchanged result of setup is put back: restoring the backup over later edits would lose them.
        bool ours = current == null || CandidateResults(original, containerdVersion, optionsFile).Contains(current);
        if (!ours)
            throw new SetupException($"{configPath} changed since `diffkeeper setup containerd` wrote it; not restoring over those edits. " +
                                     (created ? $"setup created the file: delete it (and {createdPath}) by hand"
                                              : $"the original is {backupPath}: cp {backupPath} {configPath}"));
        var diff = new StringBuilder(TextDiff.Unified(current ?? "", original ?? "", configPath, original == null ? "/dev/null" : configPath));
        bool optionsTouched = File.Exists(optionsFile + BackupSuffix) || File.Exists(optionsFile + CreatedSuffix);
        if (optionsTouched)
        {
            string? now = Read(optionsFile).Text;
            string? before = File.Exists(optionsFile + BackupSuffix) ? Read(optionsFile + BackupSuffix).Text : null;
            diff.Append(TextDiff.Unified(now ?? "", before ?? "", optionsFile, before == null ? "/dev/null" : optionsFile));
        }
        if (!dryRun)
        {
            if (created) { File.Delete(configPath); File.Delete(createdPath); }
            else { WriteAtomic(configPath, original!, bom, DefaultMode); File.Delete(backupPath); }
            if (File.Exists(optionsFile + CreatedSuffix)) { File.Delete(optionsFile); File.Delete(optionsFile + CreatedSuffix); }
            else if (File.Exists(optionsFile + BackupSuffix))
            {
                WriteAtomic(optionsFile, Read(optionsFile + BackupSuffix).Text!, false, DefaultMode);
                File.Delete(optionsFile + BackupSuffix);
            }
        }
        var outcome = new SetupOutcome
        {
            ConfigPath = configPath, Changed = current != original, DryRun = dryRun, Undo = true, Diff = diff.ToString(),
            Backup = created ? null : backupPath,
        };
        outcome.Notes.Add(created ? $"removed {configPath} (setup had created it)" : $"restored {configPath} from {backupPath}");
        return outcome;
    }

    /// <summary>What setup may have written from <paramref name="original"/> (the options' form depends on the version).</summary>
    private static IEnumerable<string> CandidateResults(string? original, Version? detected, string optionsFile)
    {
        foreach (var v in new[] { detected, new Version(1, 6), new Version(1, 7), new Version(2, 0) })
        {
            string? r = null;
            try { r = ContainerdConfigEditor.Plan(original, v, optionsFile).NewText; }
            catch (SetupException) { }
            if (r != null) yield return r;
        }
    }

    /// <summary>The installed containerd's version from `containerd --version`, or null.</summary>
    public static Version? DetectContainerdVersion()
    {
        try
        {
            var psi = new ProcessStartInfo("containerd", "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi);
            if (p == null) return null;
            var output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(5000)) { try { p.Kill(); } catch (InvalidOperationException) { } return null; }
            return ParseContainerdVersion(output);
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    /// <summary>"containerd github.com/containerd/containerd 1.6.20~ds1 …" → 1.6.20.</summary>
    public static Version? ParseContainerdVersion(string output)
    {
        var m = Regex.Match(output, @"(?<![\w.])v?(\d+)\.(\d+)\.(\d+)");
        return m.Success ? new Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value)) : null;
    }

    private static (string? Text, bool Bom) Read(string path)
    {
        if (!File.Exists(path)) return (null, false);
        var bytes = File.ReadAllBytes(path);
        bool bom = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF;
        var text = new UTF8Encoding(false, true).GetString(bytes, bom ? 3 : 0, bytes.Length - (bom ? 3 : 0));
        return (text, bom);
    }

    /// <summary>Keeps the bytes before setup's first change (or marks the file as created by setup).</summary>
    private static string SaveOriginal(string path, string? original, bool bom)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (original == null)
        {
            File.Delete(path + BackupSuffix);
            File.WriteAllBytes(path + CreatedSuffix, []);
            return path + CreatedSuffix;
        }
        File.Delete(path + CreatedSuffix);
        WriteAtomic(path + BackupSuffix, original, bom, File.GetUnixFileMode(path));
        return path + BackupSuffix;
    }

    /// <summary>Temp file in the same directory, fsync, rename: containerd never reads a half-written config.</summary>
    private static void WriteAtomic(string path, string text, bool bom, UnixFileMode modeIfNew)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var mode = File.Exists(path) ? File.GetUnixFileMode(path) : modeIfNew;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.diffkeeper-{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                if (bom) fs.Write([0xEF, 0xBB, 0xBF]);
                fs.Write(new UTF8Encoding(false).GetBytes(text));
                fs.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(tmp, mode);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
