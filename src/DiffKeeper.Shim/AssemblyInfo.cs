// The shim drives runc, Linux namespaces and cgroups: it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
