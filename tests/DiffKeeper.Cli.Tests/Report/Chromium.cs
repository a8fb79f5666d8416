using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffKeeper.Cli.Tests.Harness;

namespace DiffKeeper.Cli.Tests.Report;

/// <summary>
/// Debian's headless Chromium driven over the DevTools protocol (a WebSocket; no extra package): real mouse clicks
/// and key presses (Input.dispatch*), screenshots, and every network request the page makes (Network events).
/// The network is cut off with a dead proxy, so a page that tried to fetch something could not, and the request
/// still shows up in <see cref="Requests"/>. The browser is killed by its own pid and its profile removed on dispose.
/// </summary>
public sealed class Chromium : IDisposable
{
    private readonly Process _proc;
    private readonly TempDir _profile = new("dk-chromium-", onDisk: true);
    private readonly ClientWebSocket _ws = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly Task _reader;
    private readonly CancellationTokenSource _cts = new();
    private string _session = "";
    private int _nextId;

    public ConcurrentQueue<string> Requests { get; } = new();
    public ConcurrentQueue<string> ConsoleErrors { get; } = new();

    public static string? Executable =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    public Chromium(int width = 1400, int height = 1000)
    {
        var exe = Executable ?? throw new InvalidOperationException("no chromium");
        var psi = new ProcessStartInfo(exe)
        {
            UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true,
        };
        // Chromium leaves org.chromium.Chromium.XXXXXX directories in $TMPDIR when it is killed: keep them in the
        // profile, which is removed with it.
        psi.Environment["TMPDIR"] = _profile.Path;
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-port=0",
                     "--user-data-dir=" + _profile.Path, "--no-first-run", "--no-default-browser-check",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                     "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--hide-scrollbars",
                     $"--window-size={width},{height}", "about:blank",
                 })
            psi.ArgumentList.Add(a);
        _proc = Process.Start(psi)!;
        _proc.OutputDataReceived += (_, _) => { };
        _proc.ErrorDataReceived += (_, _) => { };
        _proc.BeginOutputReadLine();
        _proc.BeginErrorReadLine();
        // Chromium writes its port and browser endpoint into the profile once it listens.
        var portFile = Path.Combine(_profile.Path, "DevToolsActivePort");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string[] lines = [];
        while (DateTime.UtcNow < deadline)
        {
            if (_proc.HasExited) throw new InvalidOperationException($"chromium exited with {_proc.ExitCode}");
            if (File.Exists(portFile) && (lines = File.ReadAllLines(portFile)).Length >= 2) break;
            Thread.Sleep(50);
        }
        if (lines.Length < 2) { Dispose(); throw new TimeoutException("chromium did not open its DevTools port"); }
        _ws.ConnectAsync(new Uri($"ws://127.0.0.1:{lines[0]}{lines[1]}"), CancellationToken.None).GetAwaiter().GetResult();
        _reader = Task.Run(ReadLoop);
        var target = Send("Target.createTarget", new JsonObject { ["url"] = "about:blank" }, browser: true);
        var attached = Send("Target.attachToTarget", new JsonObject { ["targetId"] = target.GetProperty("targetId").GetString(), ["flatten"] = true }, browser: true);
        _session = attached.GetProperty("sessionId").GetString()!;
        Send("Page.enable");
        Send("Runtime.enable");
        Send("Network.enable");
        Send("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false });
    }

    public int Pid => _proc.Id;

    /// <summary>Where screenshots go: $DIFFKEEPER_TEST_ARTIFACTS/report, else artifacts/test-screenshots in the repository.</summary>
    public static string ArtifactDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("DIFFKEEPER_TEST_ARTIFACTS");
            if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "report");
            return Binaries.RepoRoot is { } root
                ? Path.Combine(root, "artifacts", "test-screenshots")
                : Path.Combine(Path.GetTempPath(), "diffkeeper-test-screenshots");
        }
    }

    public JsonElement Send(string method, JsonObject? p = null, bool browser = false)
    {
        int id = Interlocked.Increment(ref _nextId);
        var msg = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = p ?? new JsonObject() };
        if (!browser) msg["sessionId"] = _session;
        var tcs = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        var bytes = Encoding.UTF8.GetBytes(msg.ToJsonString());
        lock (_ws) _ws.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None).GetAwaiter().GetResult();
        if (!tcs.Task.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("DevTools: no answer to " + method);
        return tcs.Task.Result;
    }

    private async Task ReadLoop()
    {
        var buf = new byte[1 << 20];
        var ms = new MemoryStream();
        try
        {
            while (_ws.State == WebSocketState.Open && !_cts.IsCancellationRequested)
            {
                ms.SetLength(0);
                WebSocketReceiveResult r;
                do
                {
                    r = await _ws.ReceiveAsync(buf, _cts.Token);
                    ms.Write(buf, 0, r.Count);
                } while (!r.EndOfMessage);
                if (r.MessageType == WebSocketMessageType.Close) break;
                using var doc = JsonDocument.Parse(ms.ToArray());
                var root = doc.RootElement;
                if (root.TryGetProperty("id", out var idEl) && _pending.TryRemove(idEl.GetInt32(), out var tcs))
                {
                    if (root.TryGetProperty("error", out var err)) tcs.SetException(new InvalidOperationException("DevTools: " + err));
                    else tcs.SetResult(root.GetProperty("result").Clone());
                }
                else if (root.TryGetProperty("method", out var m))
                {
                    var method = m.GetString();
                    var p = root.GetProperty("params");
                    if (method == "Network.requestWillBeSent") Requests.Enqueue(p.GetProperty("request").GetProperty("url").GetString()!);
                    if (method == "Runtime.exceptionThrown") ConsoleErrors.Enqueue(p.GetProperty("exceptionDetails").ToString());
                    if (method == "Runtime.consoleAPICalled" && p.GetProperty("type").GetString() == "error") ConsoleErrors.Enqueue(p.ToString());
                }
            }
        }
        catch (Exception) when (_cts.IsCancellationRequested || _ws.State != WebSocketState.Open) { }
    }

    /// <summary>Loads the URL and waits until the report says it has rendered (body[data-ready]).</summary>
    public void Open(string url)
    {
        Send("Page.navigate", new JsonObject { ["url"] = url });
        WaitFor("document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'");
    }

    public void WaitFor(string condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            try { if (Eval(condition).ValueKind == JsonValueKind.True) return; }
            catch (InvalidOperationException) { } // the document is being replaced
            Thread.Sleep(50);
        }
        throw new TimeoutException("page never satisfied: " + condition + "; errors: " + string.Join(" | ", ConsoleErrors));
    }

    public JsonElement Eval(string expression)
    {
        var r = Send("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (r.TryGetProperty("exceptionDetails", out var ex)) throw new InvalidOperationException("page threw: " + ex);
        return r.GetProperty("result").TryGetProperty("value", out var v) ? v : default;
    }

    public string Text(string selector) =>
        Eval($"(() => {{ const e = document.querySelector({JsonSerializer.Serialize(selector)}); return e ? e.textContent : null; }})()") is { ValueKind: JsonValueKind.String } s
            ? s.GetString()! : throw new InvalidOperationException("no element " + selector);

    /// <summary>A real click (mouse moved, pressed, released) at the centre of the element, scrolled into view.</summary>
    public void Click(string selector)
    {
        var box = Eval($"(() => {{ const e = document.querySelector({JsonSerializer.Serialize(selector)}); if (!e) return null; e.scrollIntoView({{block:'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()");
        if (box.ValueKind != JsonValueKind.Array) throw new InvalidOperationException("no element " + selector);
        ClickAt(box[0].GetDouble(), box[1].GetDouble());
    }

    public void ClickAt(double x, double y)
    {
        Send("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mouseMoved", ["x"] = x, ["y"] = y });
        Send("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mousePressed", ["x"] = x, ["y"] = y, ["button"] = "left", ["clickCount"] = 1 });
        Send("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mouseReleased", ["x"] = x, ["y"] = y, ["button"] = "left", ["clickCount"] = 1 });
    }

    /// <summary>A mouse wheel turn at (x, y): negative deltaY zooms in where d3-zoom listens.</summary>
    public void Wheel(double x, double y, double deltaY) =>
        Send("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mouseWheel", ["x"] = x, ["y"] = y, ["deltaX"] = 0, ["deltaY"] = deltaY });

    /// <summary>A real key press (keyDown + keyUp) of a named key: ArrowLeft, ArrowRight, Home, End.</summary>
    public void Press(string key)
    {
        int code = key switch { "ArrowLeft" => 37, "ArrowRight" => 39, "Home" => 36, "End" => 35, _ => 0 };
        foreach (var type in new[] { "rawKeyDown", "keyUp" })
            Send("Input.dispatchKeyEvent", new JsonObject { ["type"] = type, ["key"] = key, ["code"] = key, ["windowsVirtualKeyCode"] = code, ["nativeVirtualKeyCode"] = code });
    }

    public void Type(string text) => Send("Input.insertText", new JsonObject { ["text"] = text });

    public void Screenshot(string file)
    {
        var r = Send("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = false });
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, Convert.FromBase64String(r.GetProperty("data").GetString()!));
    }

    public void Dispose()
    {
        _cts.Cancel();
        try { _ws.Abort(); } catch (Exception) { }
        try { if (!_proc.HasExited) { _proc.Kill(entireProcessTree: true); _proc.WaitForExit(10_000); } } catch (Exception) { }
        _proc.Dispose();
        _profile.Dispose();
    }
}
