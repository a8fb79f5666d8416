using Google.Protobuf;

namespace DiffKeeper.Shim.Events;

/// <summary>
/// Where the shim's task events go, in publish order (<see cref="EventPublisher"/> forwards them to containerd).
/// Publish must queue and return: it is called under the containers' locks, in the order containerd must see.
/// </summary>
public interface IEventSink
{
    void Publish(string topic, IMessage evt);
}
