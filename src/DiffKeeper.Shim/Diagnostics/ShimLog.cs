namespace DiffKeeper.Shim.Diagnostics;

/// <summary>
/// Logs to stderr, which the serving shim points at the bundle's <c>log</c> FIFO (containerd copies it into its
/// own log). containerd may be down, so a failed write is ignored: logging must never break the shim.
/// In the <c>start</c> subcommand stderr is the same pipe as stdout (containerd reads the address from it), so
/// logging is switched off there.
/// </summary>
internal static class ShimLog
{
    public static bool Enabled { get; set; } = true;
    public static bool Debug { get; set; }
    private static readonly object Gate = new();

    public static void Info(string message) => Write("info", message);
    public static void Warn(string message) => Write("warning", message);
    public static void Error(string message) => Write("error", message);

    public static void Trace(string message)
    {
        if (Debug) Write("debug", message);
    }

    private static void Write(string level, string message)
    {
        if (!Enabled) return;
        try
        {
            // logrus-like text so it reads naturally next to containerd's own lines.
            var line = $"time=\"{DateTime.UtcNow:O}\" level={level} msg=\"{message.Replace("\"", "\\\"")}\" runtime=io.containerd.diffkeeper.v1\n";
            lock (Gate) Console.Error.Write(line);
        }
        catch
        {
            // The log FIFO has no reader (containerd restarting): dropping the line is the right thing.
        }
    }
}
