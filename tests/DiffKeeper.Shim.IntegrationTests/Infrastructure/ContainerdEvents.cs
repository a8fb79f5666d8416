using System.Globalization;
using System.Text.Json;

namespace DiffKeeper.Shim.IntegrationTests.Infrastructure;

/// <summary>One line of `ctr events`: envelope timestamp, namespace, topic and the event as JSON.</summary>
public sealed record ContainerdEvent(int Sequence, DateTime ReceivedAt, string Timestamp, string Namespace, string Topic, JsonElement Body)
{
    /// <summary>The container an event is about: task events say container_id, container events id, snapshot events key.</summary>
    public string? ContainerId =>
        Str("container_id") ?? (Topic.StartsWith("/containers/") ? Str("id") : null) ?? (Topic.StartsWith("/snapshot/") ? Str("key") : null);

    public string? Str(string name) =>
        Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public long? Num(string name) =>
        Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;

    /// <summary>exit_status as ctr prints it: omitted when 0.</summary>
    public long ExitStatus => Num("exit_status") ?? 0;

    public override string ToString() => $"#{Sequence} {Topic} {Body.GetRawText()}";

    public static ContainerdEvent? Parse(int sequence, DateTime receivedAt, string line)
    {
        // "2026-11-23 22:27:24.111037112 +0000 UTC dk /tasks/create {...}"
        var parts = line.Split(' ', 7);
        if (parts.Length < 7 || !parts[5].StartsWith('/')) return null;
        try
        {
            using var doc = JsonDocument.Parse(parts[6]);
            return new ContainerdEvent(sequence, receivedAt, parts[0] + " " + parts[1], parts[4], parts[5], doc.RootElement.Clone());
        }
        catch (JsonException) { return null; }
    }
}

/// <summary>
/// A `ctr events` subscriber that lives as long as its containerd, collecting every event in arrival order, so
/// tests can assert topics and their order per container id.
/// </summary>
public sealed class ContainerdEventLog : IDisposable
{
    private readonly BackgroundProcess _ctr;
    private readonly List<ContainerdEvent> _events = new();
    private readonly List<string> _unparsed = new();
    private readonly object _gate = new();

    public ContainerdEventLog(string ctrPath, string address)
    {
        _ctr = new BackgroundProcess(ctrPath, new[] { "-a", address, "events" });
        _ctr.LineReceived += line =>
        {
            ContainerdEvent? e;
            lock (_gate)
            {
                e = ContainerdEvent.Parse(_events.Count, DateTime.UtcNow, line);
                if (e != null) _events.Add(e); else _unparsed.Add(line);
            }
            if (e != null) Received?.Invoke(e);
        };
    }

    /// <summary>
    /// Raised on the reader thread as each event arrives, for checks that must look at the system the moment an
    /// event is seen (polling <see cref="WaitForAsync"/> would look tens of milliseconds later).
    /// </summary>
    public event Action<ContainerdEvent>? Received;

    public bool SubscriberAlive => !_ctr.HasExited;

    public IReadOnlyList<ContainerdEvent> All { get { lock (_gate) return _events.ToList(); } }

    public IReadOnlyList<ContainerdEvent> For(string containerId) => All.Where(e => e.ContainerId == containerId).ToList();

    public IReadOnlyList<ContainerdEvent> TaskEventsFor(string containerId) =>
        For(containerId).Where(e => e.Topic.StartsWith("/tasks/", StringComparison.Ordinal)).ToList();

    public async Task<ContainerdEvent> WaitForAsync(string containerId, string topic, Func<ContainerdEvent, bool>? match = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var hit = For(containerId).FirstOrDefault(e => e.Topic == topic && (match == null || match(e)));
            if (hit != null) return hit;
            if (DateTime.UtcNow > deadline)
                throw new Xunit.Sdk.XunitException(
                    $"no {topic} event for {containerId} within {(timeout ?? TimeSpan.FromSeconds(10)).TotalSeconds}s; saw:\n  " +
                    string.Join("\n  ", For(containerId)) + (SubscriberAlive ? "" : "\n(ctr events subscriber died: " + _ctr.Stderr + ")"));
            await Task.Delay(25);
        }
    }

    /// <summary>Describes what was seen for a container, for assertion messages.</summary>
    public string Describe(string containerId) => string.Join("\n  ", For(containerId).Select(e => e.ToString()).Prepend("events for " + containerId + ":"));

    public void Dispose() => _ctr.Dispose();
}
