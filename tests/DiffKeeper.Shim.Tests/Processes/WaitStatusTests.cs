using DiffKeeper.Shim.Native;
using Xunit;

namespace DiffKeeper.Shim.Tests.Processes;

/// <summary>The exit status containerd reports: the exit code, or 128+signal for a signalled process.</summary>
public class WaitStatusTests
{
    // Linux wait status words: exit code in bits 8-15; terminating signal in bits 0-6; bit 7 = core dumped.
    [Theory]
    [InlineData(0x0000, 0)]
    [InlineData(0x0300, 3)]
    [InlineData(0xff00, 255)]
    [InlineData(0x0009, 137)]       // SIGKILL
    [InlineData(0x000f, 143)]       // SIGTERM
    [InlineData(0x008b, 139)]       // SIGSEGV, core dumped
    [InlineData(0x0001, 129)]       // SIGHUP
    public void Decodes_exit_codes_and_signals(int status, int expected)
    {
        Assert.Equal(expected, LibC.DecodeWaitStatus(status));
    }
}
