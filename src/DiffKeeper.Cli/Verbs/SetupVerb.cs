using DiffKeeper.Cli.Arguments;
using DiffKeeper.Cli.Setup;
using DiffKeeper.Store;

namespace DiffKeeper.Cli;

/// <summary>`diffkeeper setup containerd`: make the runtime selectable by CRI (a RuntimeClass handler "diffkeeper").</summary>
public static class SetupVerb
{
    public static int Run(ParsedArgs a, CliContext ctx)
    {
        if (a.Positionals[0] != "containerd") throw new UsageException($"unknown setup target '{a.Positionals[0]}' (only: containerd)");
        var config = a.Value("config") ?? ContainerdSetup.DefaultConfig;
        Version? version;
        if (a.Value("containerd-version") is { } v)
            version = ContainerdSetup.ParseContainerdVersion(v + (v.Count(c => c == '.') == 1 ? ".0" : "")) ??
                      throw new UsageException($"--containerd-version: '{v}' is not a version such as 1.7 or 2.0.1");
        else version = ContainerdSetup.DetectContainerdVersion();
        var optionsFile = a.Value("options-file") ?? ContainerdConfigEditor.DefaultOptionsFile;
        if (!Path.IsPathRooted(optionsFile)) throw new UsageException("--options-file must be an absolute path (containerd passes it to the shim as is)");
        bool dryRun = a.Flags.Contains("dry-run");
        var r = a.Flags.Contains("undo")
            ? ContainerdSetup.Undo(config, version, optionsFile, dryRun)
            : ContainerdSetup.Apply(config, version, optionsFile, dryRun);

        string restart = !r.Changed ? "containerd needs no restart"
            : dryRun ? "applying this needs a containerd restart"
            : "restart containerd to apply it: systemctl restart containerd   (running containers keep running)";
        if (a.Json)
        {
            ctx.Out.Json(w =>
            {
                w.WriteString("config", r.ConfigPath);
                if (!r.Undo) w.WriteNumber("config_version", r.ConfigVersion);
                w.WriteBoolean("undo", r.Undo);
                w.WriteBoolean("changed", r.Changed);
                w.WriteBoolean("dry_run", r.DryRun);
                w.WriteBoolean("restart_needed", r.RestartNeeded);
                if (r.Backup != null) w.WriteString("backup", r.Backup); else w.WriteNull("backup");
                w.WriteString("diff", r.Diff);
                w.WriteStartArray("notes");
                foreach (var n in r.Notes) w.WriteStringValue(n);
                w.WriteEndArray();
            });
            return 0;
        }
        if (r.Diff.Length > 0) ctx.Out.Line(r.Diff.TrimEnd('\n'));
        foreach (var n in r.Notes) ctx.Out.Line(n);
        if (r.Changed && dryRun) ctx.Out.Line("dry run: nothing written");
        else if (r.Changed && !r.Undo && r.Backup != null) ctx.Out.Line($"{r.ConfigPath} updated (backup: {r.Backup}; `diffkeeper setup containerd --undo` restores it)");
        else if (!r.Changed) ctx.Out.Line($"{r.ConfigPath}: no change");
        ctx.Out.Line(restart);
        return 0;
    }
}
