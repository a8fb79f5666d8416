using DiffKeeper.Recorder.Tracking;
using DiffKeeper.Store;
using DiffKeeper.Ttrpc;
using Google.Protobuf;

namespace DiffKeeper.Recorder.Api;

/// <summary>The Recorder API (proto/diffkeeper/recorder/v1/recorder.proto) on a ttrpc server.</summary>
internal sealed class RecorderService(ContainerRecorder recorder, Action<string> log)
{
    public const string ServiceName = "diffkeeper.recorder.v1.Recorder";
    private static readonly TimeSpan SlowCall = TimeSpan.FromMilliseconds(2);

    public void Register(TtrpcServer server)
    {
        Add(server, "Track", TrackRequest.Parser, (r, _) => recorder.Track(r));
        Add(server, "Lifecycle", LifecycleRequest.Parser, (r, _) => { recorder.Lifecycle(r); return new LifecycleResponse(); });
        Add(server, "Exited", ExitedRequest.Parser, (r, _) => { recorder.Exited(r); return new ExitedResponse(); });
        Add(server, "Status", StatusRequest.Parser, (_, _) => recorder.Status());
        Add(server, "RecordStart", RecordStartRequest.Parser, (r, ctx) => recorder.RecordStart(r, ctx.ConnectionClosed));
        Add(server, "RecordEnd", RecordEndRequest.Parser, (r, _) => recorder.RecordEnd(r));
    }

    private void Add<TReq, TResp>(TtrpcServer server, string method, MessageParser<TReq> parser, Func<TReq, TtrpcCallContext, TResp> handler)
        where TReq : IMessage<TReq> where TResp : IMessage<TResp>
    {
        server.Register<TReq, TResp>(ServiceName, method, parser, (request, context) =>
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                return ValueTask.FromResult(handler(request, context));
            }
            catch (TtrpcException) { throw; }
            catch (Exception e) when (e is IOException or CorruptDataException or NotFoundException or UnauthorizedAccessException)
            {
                // The store or the file system failed: the shim goes on without us and spools the exit state.
                log($"{method} failed: {e.Message}");
                throw new TtrpcException(TtrpcStatusCode.Unavailable, $"{method}: {e.Message}");
            }
            finally
            {
                // Track and Exited are on the shim's Create and Delete paths: a slow one shows in the log.
                var took = System.Diagnostics.Stopwatch.GetElapsedTime(t0);
                if (took >= SlowCall) log($"{method} took {took.TotalMilliseconds:F1} ms");
            }
        });
    }
}
