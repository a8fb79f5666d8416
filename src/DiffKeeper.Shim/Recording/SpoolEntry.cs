namespace DiffKeeper.Shim.Recording;

/// <summary>Spool entries: <c>&lt;spool&gt;/&lt;namespace&gt;/&lt;id&gt;-&lt;exit unix ns&gt;/</c> (docs/recorder.md).</summary>
internal static class SpoolEntry
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates the entry directory (0700: it holds the container's files) and returns its path.</summary>
    public static string Create(string spool, string ns, string id, DateTime exitedAt)
    {
        // Namespaces and ids are containerd identifiers ([A-Za-z0-9._-]); refuse anything that could leave the spool.
        if (ns.Contains('/') || id.Contains('/') || ns is "" or "." or ".." || id is "" or "." or "..")
            throw new ArgumentException($"unsafe namespace/id {ns}/{id}");
        var parent = Path.Combine(spool, ns);
        Directory.CreateDirectory(parent, OwnerOnly);
        var name = $"{id}-{Service.BundleState.ToUnixNanos(exitedAt)}";
        for (int attempt = 0; ; attempt++)
        {
            // The same exit is never frozen twice (the bundle marks it); a leftover of an interrupted freeze of the
            // same name (no manifest: the daemon removes it) must not be mixed with this one.
            var path = Path.Combine(parent, attempt == 0 ? name : $"{name}.{attempt}");
            if (Directory.Exists(path)) continue;
            Directory.CreateDirectory(path, OwnerOnly);
            return path;
        }
    }
}
