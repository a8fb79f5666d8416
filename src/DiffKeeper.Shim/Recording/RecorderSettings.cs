using System.Globalization;

namespace DiffKeeper.Shim.Recording;

/// <summary>
/// The recorder's knobs, from the shim's environment (containerd's: the shim inherits it).
/// <list type="bullet">
/// <item><c>DIFFKEEPER_SOCKET</c>: the daemon's ttrpc socket (default /run/diffkeeper/diffkeeperd.sock).</item>
/// <item><c>DIFFKEEPER_STORE</c>: the store; the spool is <c>$DIFFKEEPER_STORE/spool</c> when the daemon names none
/// (default /var/lib/diffkeeper/spool).</item>
/// <item><c>DIFFKEEPER_RECORDER_TIMEOUT</c>: the longest any one call to the daemon may hold a container operation
/// (Track at Create, Exited at Delete); <c>500ms</c>, <c>1s</c>, or a number of milliseconds. Default 500 ms.</item>
/// <item><c>DIFFKEEPER_FREEZE_TIMEOUT</c>: the freeze's deadline in the serving shim (default 5 s: CRI gives Delete
/// 10 s, and runc delete, the unmount and one daemon call need the rest). The <c>delete</c> subcommand, which
/// containerd kills after 5 s, uses at most 1.5 s.</item>
/// </list>
/// </summary>
public sealed record RecorderSettings(string Socket, string DefaultSpool, TimeSpan Timeout, TimeSpan FreezeBudget)
{
    public const string SocketVariable = "DIFFKEEPER_SOCKET";
    public const string StoreVariable = "DIFFKEEPER_STORE";
    public const string TimeoutVariable = "DIFFKEEPER_RECORDER_TIMEOUT";
    public const string FreezeTimeoutVariable = "DIFFKEEPER_FREEZE_TIMEOUT";
    public const string DefaultSocket = "/run/diffkeeper/diffkeeperd.sock";
    public const string DefaultStore = "/var/lib/diffkeeper";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan DefaultFreezeBudget = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DeleteSubcommandFreezeBudget = TimeSpan.FromMilliseconds(1500);

    public static RecorderSettings FromEnvironment()
    {
        string socket = NonEmpty(SocketVariable) ?? DefaultSocket;
        string store = NonEmpty(StoreVariable) ?? DefaultStore;
        return new RecorderSettings(socket, Path.Combine(store, "spool"),
            ParseDuration(NonEmpty(TimeoutVariable)) ?? DefaultTimeout,
            ParseDuration(NonEmpty(FreezeTimeoutVariable)) ?? DefaultFreezeBudget);
    }

    /// <summary>"250ms", "1.5s", "2m" or a bare number of milliseconds; null when absent or unreadable (→ default).</summary>
    public static TimeSpan? ParseDuration(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        text = text.Trim();
        double scale = 1;
        if (text.EndsWith("ms", StringComparison.Ordinal)) text = text[..^2];
        else if (text.EndsWith('s')) { text = text[..^1]; scale = 1000; }
        else if (text.EndsWith('m')) { text = text[..^1]; scale = 60_000; }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < 0 || double.IsNaN(value))
            return null;
        return TimeSpan.FromMilliseconds(Math.Min(value * scale, 600_000));
    }

    private static string? NonEmpty(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}
