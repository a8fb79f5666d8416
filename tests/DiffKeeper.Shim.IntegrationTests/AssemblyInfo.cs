// The suite drives containerd, runc and Linux mounts: Linux only. Checklist tests share one private containerd
// and assert "nothing left behind" process-wide, so they run one at a time (see also xunit.runner.json).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
