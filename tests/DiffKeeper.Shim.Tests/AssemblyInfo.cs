// The shim (and its sources compiled in here) only runs on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
