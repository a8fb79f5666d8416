namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>One invocation of a shim binary by containerd, as logged by the wrapper script.</summary>
public sealed record ShimCall(string LogFile, string Cwd, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Env,
    string? Stdout, byte[]? Stdin, int? ExitCode)
{
    /// <summary>"start", "delete", or "serve" (no action: the server copy, if a shim re-runs itself through PATH).</summary>
    public string Action => Args.Count > 0 && Args[^1] is "start" or "delete" ? Args[^1] : "serve";

    public string? Flag(string name)
    {
        for (var i = 0; i + 1 < Args.Count; i++) if (Args[i] == name) return Args[i + 1];
        return null;
    }

    public string? Id => Flag("-id");

    public override string ToString() => $"{Action} [{string.Join(' ', Args)}] cwd={Cwd}";
}

/// <summary>
/// Puts the shims under test on containerd's PATH. Each is a small wrapper script installed under the shim's own
/// name that logs argv/env/cwd (and, for `start`, stdin and the combined output) and then runs the real binary, so
/// tests can check how containerd calls a shim (item 2), which `delete` calls it ran (29, 30), and can redirect a
/// shim's TTRPC_ADDRESS through a decoding proxy (32).
/// </summary>
public sealed class ShimInstallation
{
    private readonly Dictionary<string, string> _realBinaries = new();
    private readonly Dictionary<string, string> _unavailable = new();

    public ShimInstallation(string root)
    {
        BinDir = Path.Combine(root, "bin");
        CallDir = Path.Combine(root, "calls");
        RedirectDir = Path.Combine(root, "ttrpc-redirect");
        Directory.CreateDirectory(BinDir);
        Directory.CreateDirectory(CallDir);
        Directory.CreateDirectory(RedirectDir);
    }

    public string BinDir { get; }
    public string CallDir { get; }
    public string RedirectDir { get; }

    public string? RealBinary(string runtime) => _realBinaries.GetValueOrDefault(runtime);
    public string? UnavailableReason(string runtime) => _unavailable.GetValueOrDefault(runtime);

    public void Install(string runtime, string? realBinary, string? whyMissing)
    {
        if (realBinary == null || !File.Exists(realBinary))
        {
            _unavailable[runtime] = whyMissing ?? $"{ShimRuntimes.BinaryName(runtime)} not found at {realBinary}";
            return;
        }
        _realBinaries[runtime] = realBinary;
        var wrapper = Path.Combine(BinDir, ShimRuntimes.BinaryName(runtime));
        File.WriteAllText(wrapper, WrapperScript(realBinary));
        File.SetUnixFileMode(wrapper, (UnixFileMode)0b111_101_101);
    }

    private string WrapperScript(string real) => $$"""
        #!/bin/bash
        # Test wrapper written by DiffKeeper.Shim.IntegrationTests: log the call, then run the real shim.
        real='{{real}}'
        calls='{{CallDir}}'
        redirects='{{RedirectDir}}'
        log="$calls/$(date +%s%N)-$$"
        { printf 'cwd=%s\n' "$PWD"; for a in "$@"; do printf 'arg=%s\n' "$a"; done; env | sed 's/^/env=/'; } >"$log.tmp"
        action= ; id= ; prev=
        for a in "$@"; do [ "$prev" = -id ] && id=$a; prev=$a; action=$a; done
        if [ -n "$id" ] && [ -f "$redirects/$id" ]; then export TTRPC_ADDRESS="$(cat "$redirects/$id")"; fi
        mv "$log.tmp" "$log.call"
        if [ "$action" = start ]; then
          cat >"$log.stdin"
          "$real" "$@" <"$log.stdin" >"$log.out" 2>&1
          rc=$?
          echo "$rc" >"$log.rc"
          cat "$log.out"
          exit "$rc"
        fi
        exec "$real" "$@"
        """.Replace("\r", "") + "\n";

    /// <summary>All logged calls so far, oldest first (file names start with a nanosecond timestamp).</summary>
    public IReadOnlyList<ShimCall> Calls()
    {
        var result = new List<ShimCall>();
        foreach (var file in Directory.GetFiles(CallDir, "*.call").OrderBy(f => f, StringComparer.Ordinal))
        {
            string[] lines;
            try { lines = File.ReadAllLines(file); } catch (IOException) { continue; }
            var args = lines.Where(l => l.StartsWith("arg=")).Select(l => l[4..]).ToList();
            var env = new Dictionary<string, string>();
            foreach (var l in lines.Where(l => l.StartsWith("env=")))
            {
                var kv = l[4..];
                var eq = kv.IndexOf('=');
                if (eq > 0) env[kv[..eq]] = kv[(eq + 1)..];
            }
            var cwd = lines.FirstOrDefault(l => l.StartsWith("cwd="))?[4..] ?? "";
            var stem = file[..^".call".Length];
            int? rc = File.Exists(stem + ".rc") && int.TryParse(File.ReadAllText(stem + ".rc").Trim(), out var r) ? r : null;
            result.Add(new ShimCall(file, cwd, args, env,
                rc != null && File.Exists(stem + ".out") ? File.ReadAllText(stem + ".out") : null,
                File.Exists(stem + ".stdin") ? File.ReadAllBytes(stem + ".stdin") : null, rc));
        }
        return result;
    }

    public IReadOnlyList<ShimCall> CallsFor(string id) => Calls().Where(c => c.Id == id).ToList();
}
