global using Xunit;
global using DiffKeeper.Recorder.Tests.Harness;
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
