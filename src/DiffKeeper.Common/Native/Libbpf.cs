using System.Runtime.InteropServices;

namespace DiffKeeper.Common.Native;

/// <summary>
/// Which libbpf.so.1 the capture binds to. The distribution's comes first (it gets the distribution's security
/// updates); when the node has none (Ubuntu 22.04 and RHEL 9.0/9.1 ship only libbpf 0.5, soname libbpf.so.0, which
/// lacks bpf_object__next_program and returns ERR_PTR-encoded pointers), the copy the package bundles in
/// &lt;executable dir&gt;/libbpf/libbpf.so.1 is loaded. DIFFKEEPER_LIBBPF forces the choice: <c>system</c>,
/// <c>bundled</c>, or a path to a libbpf.so.1. See docs/install.md.
/// </summary>
public static class Libbpf
{
    public const string Soname = "libbpf.so.1";
    public const string EnvVar = "DIFFKEEPER_LIBBPF";

    /// <summary>The package's private copy: a subdirectory, so that the runtime's own probing of the executable's
    /// directory never prefers it over the distribution's.</summary>
    public static string BundledPath => Path.Combine(AppContext.BaseDirectory, "libbpf", Soname);

    /// <summary>The outcome of loading: Handle 0 when nothing loaded; Source says which copy (or why none).</summary>
    public readonly record struct Result(nint Handle, string Source);

    private static readonly Lazy<Result> Loaded = new(() => Load(Environment.GetEnvironmentVariable(EnvVar)));

    /// <summary>Loads once per process; the daemon's P/Invoke resolver and doctor both use this.</summary>
    public static Result Get() => Loaded.Value;

    /// <summary>Loads libbpf.so.1 as <paramref name="choice"/> (the DIFFKEEPER_LIBBPF value) says.</summary>
    public static Result Load(string? choice)
    {
        var errors = new List<string>();
        switch (choice)
        {
            case null or "" or "auto":
                return TryOpen(Soname, "system " + Soname, errors) ?? TryOpen(BundledPath, "bundled " + BundledPath, errors) ?? Fail(errors);
            case "system":
                return TryOpen(Soname, "system " + Soname, errors) ?? Fail(errors);
            case "bundled":
                return TryOpen(BundledPath, "bundled " + BundledPath, errors) ?? Fail(errors);
            default:
                if (!Path.IsPathRooted(choice))
                    return new(0, $"{EnvVar}={choice}: expected auto, system, bundled or an absolute path to {Soname}");
                return TryOpen(choice, $"{EnvVar} {choice}", errors) ?? Fail(errors);
        }
    }

    private static Result? TryOpen(string nameOrPath, string source, List<string> errors)
    {
        // NativeLibrary.Load(string) is a plain dlopen: a bare soname is looked up by the dynamic loader only
        // (ld.so.cache and the system directories), never in the executable's directory.
        try { return new(NativeLibrary.Load(nameOrPath), source); }
        catch (DllNotFoundException e) { errors.Add(e.Message.Trim()); }
        catch (BadImageFormatException e) { errors.Add(e.Message.Trim()); }
        return null;
    }

    private static Result Fail(List<string> errors) => new(0, string.Join("; ", errors));
}
