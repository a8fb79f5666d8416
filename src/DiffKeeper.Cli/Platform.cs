// The CLI runs on Linux only (containerd nodes, recordings of Linux containers): file modes, /proc, unix sockets.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
