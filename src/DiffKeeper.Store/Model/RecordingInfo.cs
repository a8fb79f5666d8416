namespace DiffKeeper.Store.Model;

/// <summary>Enough about a recorded container to find it again, plus the recording's span.</summary>
public sealed class RecordingInfo
{
    public ulong Id;
    public string? Name;
    public string? Namespace;
    public string? ContainerId;
    public string? Image;
    public Dictionary<string, string> Labels = new();
    public int? ExitStatus;
    public string? Host;
    public string? Kernel;
    public long Start;              // ns since the Unix epoch
    /// <summary>The moment of exit, when an exit was recorded.</summary>
    public long? ExitTime;
    /// <summary>The newest recorded moment (a version or an event).</summary>
    public long LastMoment;
    /// <summary>Bytes of chunks this recording added to the store (compressed, as stored).</summary>
    public long StoredBytes;
    /// <summary>When this recording comes from a packed file: its path (read-only).</summary>
    public string? PackedFile;

    public string IdText => FormatId(Id);
    public long End => ExitTime ?? Math.Max(LastMoment, Start);

    public static string FormatId(ulong id) => id.ToString("x16");

    public static bool TryParseId(string s, out ulong id) =>
        ulong.TryParse(s, System.Globalization.NumberStyles.HexNumber, null, out id) && s.Length == 16;
}
