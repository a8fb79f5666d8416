using System.Globalization;
using System.Text;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace DiffKeeper.Cli.Setup;

/// <summary>What <see cref="ContainerdConfigEditor.Plan"/> decided.</summary>
public sealed class SetupPlan
{
    /// <summary>The config text to write (equal to the input when nothing changes).</summary>
    public required string NewText { get; init; }
    public required bool Changed { get; init; }
    public required int ConfigVersion { get; init; }
    /// <summary>Human-readable notes (what was added, what was carried over, warnings).</summary>
    public List<string> Notes { get; } = new();
    /// <summary>The runc options copied to our runtime (key → TOML literal).</summary>
    public List<KeyValuePair<string, string>> CarriedOptions { get; } = new();
    /// <summary>
    /// containerd 1.6's CRI passes a non-runc runtime only <c>ConfigPath</c> from its options table, so there the
    /// carried runc options go into this file (null: nothing to write).
    /// </summary>
    public string? OptionsFileText { get; init; }
}

public sealed class SetupException(string message) : Exception(message);

/// <summary>
/// Adds the DiffKeeper runtime to containerd's CRI config. The file is parsed into Tomlyn's lossless syntax tree
/// and the new tables are inserted as nodes, so every other byte (comments, order, spacing) stays as it was; the
/// result is re-parsed and checked to be the original plus one inserted block before anyone writes it.
/// </summary>
public static class ContainerdConfigEditor
{
    public const string RuntimeName = "diffkeeper";
    public const string RuntimeType = "io.containerd.diffkeeper.v1";
    public const string AnnotationPattern = "io.diffkeeper/*";
    public const string DefaultOptionsFile = "/etc/diffkeeper/runc.toml";

    /// <summary>The runc options our shim accepts (src/DiffKeeper.Shim/README.md, "Runtime options").</summary>
    private static readonly string[] ShimOptionKeys =
    [
        "SystemdCgroup", "BinaryName", "Root", "ShimCgroup", "NoPivotRoot", "NoNewKeyring", "IoUid", "IoGid",
        "CriuPath", "CriuImagePath", "CriuWorkPath",
    ];

    /// <summary>Where CRI keeps its runtimes: config version 2 (containerd 1.x) and 3 (2.x).</summary>
    public static string[] RuntimesPath(int version) => version switch
    {
        2 => ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"],
        3 => ["plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes"],
        _ => throw new ArgumentOutOfRangeException(nameof(version)),
    };

    /// <param name="original">The current config, or null when the file does not exist.</param>
    /// <param name="containerdVersion">containerd's version ("1.6.20"), or null when unknown; decides the config
    /// version of a new file and how runc options reach the shim.</param>
    /// <param name="optionsFile">Where the options file goes on containerd 1.6.</param>
    public static SetupPlan Plan(string? original, Version? containerdVersion, string optionsFile = DefaultOptionsFile)
    {
        string text = original ?? "";
        var doc = SyntaxParser.Parse(text, "config.toml", validate: true);
        if (doc.HasErrors)
            throw new SetupException("containerd's config is not valid TOML: " + string.Join("; ", doc.Diagnostics.Select(d => d.ToString())));
        // The lossless tree must give back the exact input, or an edit could change bytes we never meant to touch.
        if (doc.ToString() != text) throw new SetupException("the TOML syntax tree does not round-trip this file; refusing to edit it");

        var defined = DefinedPaths(doc);
        int version;
        bool addVersionKey = false;
        var versionKey = doc.KeyValues.FirstOrDefault(kv => KeyParts(kv.Key!).SequenceEqual(["version"]));
        if (versionKey != null)
        {
            if (versionKey.Value is not IntegerValueSyntax { Value: 2 or 3 } iv)
                throw new SetupException($"containerd config version {versionKey.Value?.ToString()?.Trim()} is not supported (2 for containerd 1.6/1.7, 3 for 2.x)");
            version = (int)iv.Value;
        }
        else if (doc.KeyValues.ChildrenCount == 0 && doc.Tables.ChildrenCount == 0)
        {
            // An absent or empty (comments only) file means containerd's defaults: write a config of the version this
            // containerd reads natively.
            version = containerdVersion is { Major: >= 2 } ? 3 : 2;
            addVersionKey = true;
        }
        else
        {
            throw new SetupException("containerd's config has no `version` key (version 1, containerd < 1.5 format); " +
                                     "convert it to version 2 (containerd 1.x) or 3 (2.x) first");
        }

        var runtimes = RuntimesPath(version);
        var plugin = runtimes[..2];
        var names = defined.Where(p => StartsWith(p, runtimes) && p.Length > runtimes.Length).Select(p => p[runtimes.Length]).Distinct().ToList();

        if (names.Contains(RuntimeName))
        {
            var rt = FindValue(doc, [.. runtimes, RuntimeName, "runtime_type"]);
            if (rt is StringValueSyntax { Value: RuntimeType })
            {
                var keep = new SetupPlan { NewText = text, Changed = false, ConfigVersion = version };
                keep.Notes.Add($"runtime \"{RuntimeName}\" is already configured ({Dotted(runtimes)}.{RuntimeName})");
                AddWarnings(keep, doc, plugin);
                return keep;
            }
            throw new SetupException($"{Dotted(runtimes)}.{RuntimeName} exists with runtime_type {rt?.ToString()?.Trim() ?? "(none)"}, " +
                                     $"not \"{RuntimeType}\"; fix or remove it by hand, then run setup again");
        }

        // The node's runc options that our shim understands, with non-default values (a default needs no copy).
        var carried = new List<KeyValuePair<string, string>>();
        foreach (var key in ShimOptionKeys)
        {
            var v = FindValue(doc, [.. runtimes, "runc", "options", key]);
            string? literal = v switch
            {
                BooleanValueSyntax b => b.Value ? "true" : null,
                IntegerValueSyntax i => i.Value != 0 ? i.Value.ToString(CultureInfo.InvariantCulture) : null,
                StringValueSyntax s => s.Value is { Length: > 0 } sv ? Quote(sv) : null,
                _ => null,
            };
            if (literal != null) carried.Add(new(key, literal));
        }
        // containerd 1.7+ hands a non-runc runtime its whole options table as TOML (ConfigBody); 1.6 hands over only
        // ConfigPath. Unknown version with a v2 config: the file form, which every version understands.
        bool inline = version == 3 || containerdVersion is { Major: 1, Minor: >= 7 } or { Major: >= 2 };

        var block = new StringBuilder();
        var notes = new List<string>();
        string Header(params string[] path) => "[" + Dotted(path) + "]";
        if (names.Count == 0)
        {
            // Declaring one runtime replaces CRI's default runtimes table: without runc the plugin fails to load.
            block.Append('\n').Append(Header([.. runtimes, "runc"])).Append('\n');
            block.Append("  runtime_type = \"io.containerd.runc.v2\"\n");
            notes.Add("added the default runc runtime explicitly (declaring any runtime replaces CRI's default table)");
        }
        block.Append('\n');
        block.Append("# DiffKeeper: pods with a RuntimeClass whose handler is \"diffkeeper\" run under the flight recorder.\n");
        block.Append(Header([.. runtimes, RuntimeName])).Append('\n');
        block.Append($"  runtime_type = \"{RuntimeType}\"\n");
        block.Append($"  pod_annotations = [\"{AnnotationPattern}\"]\n");
        block.Append($"  container_annotations = [\"{AnnotationPattern}\"]\n");
        notes.Add($"added runtime \"{RuntimeName}\" (runtime_type {RuntimeType}, annotations {AnnotationPattern})");
        string? optionsFileText = null;
        if (carried.Count > 0)
        {
            block.Append(Header([.. runtimes, RuntimeName, "options"])).Append('\n');
            if (inline)
            {
                foreach (var (k, v) in carried) block.Append($"  {k} = {v}\n");
                notes.Add("carried the runc options over: " + string.Join(", ", carried.Select(c => $"{c.Key} = {c.Value}")));
            }
            else
            {
                block.Append($"  ConfigPath = {Quote(optionsFile)}\n");
                var f = new StringBuilder("# runc options for the DiffKeeper shim, copied from containerd's runc runtime by `diffkeeper setup containerd`\n");
                foreach (var (k, v) in carried) f.Append($"{k} = {v}\n");
                optionsFileText = f.ToString();
                notes.Add($"carried the runc options over into {optionsFile} (containerd 1.6 passes only ConfigPath): " +
                          string.Join(", ", carried.Select(c => $"{c.Key} = {c.Value}")));
            }
        }

        // Insert after the last table of the runtimes (their options tables included), else after the last table of
        // the CRI plugin, else at the end.
        int anchor = LastTableIndex(doc, runtimes);
        if (anchor < 0) anchor = LastTableIndex(doc, plugin);
        if (anchor < 0) anchor = doc.Tables.ChildrenCount - 1;
        string snippet;
        if (addVersionKey) snippet = $"version = {version}\n" + block.ToString().TrimStart('\n');
        else
        {
            // A last line without its newline would glue our first line onto it.
            string before = PrefixText(doc, anchor);
            snippet = (before.Length > 0 && !before.EndsWith('\n') ? "\n" : "") + block;
        }
        string result = Insert(doc, anchor, snippet, addVersionKey);
        if (!addVersionKey) result = AtLineStart(text, result, snippet);

        Verify(text, result, version, runtimes);
        var plan = new SetupPlan { NewText = result, Changed = true, ConfigVersion = version, OptionsFileText = optionsFileText };
        plan.Notes.AddRange(notes);
        plan.CarriedOptions.AddRange(carried);
        AddWarnings(plan, doc, plugin);
        return plan;
    }

    private static void AddWarnings(SetupPlan plan, DocumentSyntax doc, string[] plugin)
    {
        if (FindValue(doc, ["disabled_plugins"]) is ArraySyntax arr)
        {
            foreach (var item in arr.Items)
                if (item.Value is StringValueSyntax { Value: var p } && (p == plugin[1] || p == "cri"))
                    plan.Notes.Add($"warning: the CRI plugin is disabled (disabled_plugins contains \"{p}\"): Kubernetes cannot use any runtime until it is enabled");
        }
    }

    /// <summary>Inserts the snippet's tables (and a top-level key) into the tree after table <paramref name="anchor"/>.</summary>
    private static string Insert(DocumentSyntax doc, int anchor, string snippet, bool addVersionKey)
    {
        var add = SyntaxParser.Parse(snippet, "snippet.toml", validate: false);
        if (add.HasErrors) throw new InvalidOperationException("internal: generated TOML is invalid: " + snippet);
        if (addVersionKey)
        {
            // Only comments so far: the key and the tables go at the end, after them.
            while (add.KeyValues.ChildrenCount > 0)
            {
                var kv = add.KeyValues.GetChild(0)!;
                add.KeyValues.RemoveChildAt(0);
                doc.KeyValues.Add(kv);
            }
        }
        var moved = new List<TableSyntaxBase>();
        while (add.Tables.ChildrenCount > 0)
        {
            moved.Add(add.Tables.GetChild(0)!);
            add.Tables.RemoveChildAt(0);
        }
        // SyntaxList has no Insert: take the tail off, append the new tables, put the tail back.
        var tail = new List<TableSyntaxBase>();
        while (doc.Tables.ChildrenCount > anchor + 1)
        {
            tail.Insert(0, doc.Tables.GetChild(doc.Tables.ChildrenCount - 1)!);
            doc.Tables.RemoveChildAt(doc.Tables.ChildrenCount - 1);
        }
        foreach (var t in moved) doc.Tables.Add(t);
        foreach (var t in tail) doc.Tables.Add(t);
        return doc.ToString();
    }

    /// <summary>The text of the document up to and including table <paramref name="anchor"/>.</summary>
    private static string PrefixText(DocumentSyntax doc, int anchor)
    {
        var sb = new StringBuilder();
        foreach (var kv in doc.KeyValues) sb.Append(kv.ToString());
        for (int i = 0; i <= anchor && i < doc.Tables.ChildrenCount; i++) sb.Append(doc.Tables.GetChild(i)!.ToString());
        return sb.ToString();
    }

    /// <summary>
    /// Tomlyn may keep the next table's indentation as trivia of the node before it, so a block inserted between
    /// the nodes would land between that indentation and the header ("  " + our block + "[next]"). Move the block to
    /// the start of that line (only whitespace lies between), so the next header keeps its indentation.
    /// </summary>
    private static string AtLineStart(string original, string result, string block)
    {
        int p = 0;
        while (p < original.Length && original[p] == result[p]) p++;
        // Where the tree put the block: at or before the end of the common prefix (the block may begin like the text after it).
        int t = p;
        while (t >= 0 && !result.AsSpan(t).StartsWith(block)) t--;
        if (t < 0 || result.Length != original.Length + block.Length || result[(t + block.Length)..] != original[t..]) return result;
        int q = t;
        while (q > 0 && original[q - 1] is ' ' or '\t') q--;
        if (q > 0 && original[q - 1] != '\n') return result;
        // Also before the blank lines that end the previous table: they then separate our block from the next one.
        while (q > 0)
        {
            int prevStart = q - 1 == 0 ? 0 : original.LastIndexOf('\n', q - 2) + 1;
            if (!original.AsSpan(prevStart, q - 1 - prevStart).IsWhiteSpace()) break;
            q = prevStart;
        }
        return original[..q] + block + original[q..];
    }

    /// <summary>The edit must be one inserted block that parses and defines our runtime; anything else is a bug.</summary>
    private static void Verify(string original, string result, int version, string[] runtimes)
    {
        int p = 0;
        while (p < original.Length && p < result.Length && original[p] == result[p]) p++;
        int s = 0;
        while (s < original.Length - p && s < result.Length - p && original[^(s + 1)] == result[^(s + 1)]) s++;
        if (p + s != original.Length) throw new InvalidOperationException("internal: the edit changed existing bytes of the config");
        var check = SyntaxParser.Parse(result, "config.toml", validate: true);
        if (check.HasErrors) throw new InvalidOperationException("internal: the edited config does not parse: " + string.Join("; ", check.Diagnostics.Select(d => d.ToString())));
        if (FindValue(check, [.. runtimes, RuntimeName, "runtime_type"]) is not StringValueSyntax { Value: RuntimeType })
            throw new InvalidOperationException($"internal: the edited config (version {version}) does not define the runtime");
    }

    private static int LastTableIndex(DocumentSyntax doc, string[] prefix)
    {
        int last = -1;
        for (int i = 0; i < doc.Tables.ChildrenCount; i++)
            if (StartsWith(KeyParts(doc.Tables.GetChild(i)!.Name!), prefix)) last = i;
        return last;
    }

    /// <summary>Every table and key path the document defines (table headers, keys, dotted keys, inline tables).</summary>
    public static List<string[]> DefinedPaths(DocumentSyntax doc)
    {
        var paths = new List<string[]>();
        void AddItems(string[] table, IEnumerable<KeyValueSyntax> items)
        {
            foreach (var kv in items)
            {
                var path = table.Concat(KeyParts(kv.Key!)).ToArray();
                paths.Add(path);
                if (kv.Value is InlineTableSyntax it) AddItems(path, it.Items.Select(i => i.KeyValue!).Where(k => k != null));
            }
        }
        AddItems([], doc.KeyValues);
        foreach (var t in doc.Tables)
        {
            var name = KeyParts(t.Name!);
            paths.Add(name);
            AddItems(name, t.Items);
        }
        return paths;
    }

    /// <summary>The value at a full key path, wherever it is written (header + key, or dotted keys).</summary>
    public static ValueSyntax? FindValue(DocumentSyntax doc, string[] path)
    {
        ValueSyntax? found = null;
        void Search(string[] table, IEnumerable<KeyValueSyntax> items)
        {
            foreach (var kv in items)
            {
                var full = table.Concat(KeyParts(kv.Key!)).ToArray();
                if (full.SequenceEqual(path)) found = kv.Value;
                else if (kv.Value is InlineTableSyntax it && StartsWith(path, full))
                    Search(full, it.Items.Select(i => i.KeyValue!).Where(k => k != null));
            }
        }
        Search([], doc.KeyValues);
        foreach (var t in doc.Tables)
        {
            if (t is TableSyntax) Search(KeyParts(t.Name!), t.Items);
        }
        return found;
    }

    public static string[] KeyParts(KeySyntax key)
    {
        var parts = new List<string> { Part(key.Key) };
        foreach (var d in key.DotKeys) parts.Add(Part(d.Key));
        return parts.ToArray();
    }

    private static string Part(BareKeyOrStringValueSyntax? k) => k switch
    {
        BareKeySyntax b => b.Key!.Text!,
        StringValueSyntax s => s.Value!,
        _ => "",
    };

    private static bool StartsWith(string[] path, string[] prefix) =>
        path.Length >= prefix.Length && path.AsSpan(0, prefix.Length).SequenceEqual(prefix);

    /// <summary>A TOML key path as containerd writes it: bare segments plain, others quoted.</summary>
    public static string Dotted(string[] path) => string.Join('.', path.Select(p => BareKeySyntax.IsBareKey(p) ? p : Quote(p)));

    private static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case < ' ': sb.Append($"\\u{(int)c:X4}"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('"').ToString();
    }
}
