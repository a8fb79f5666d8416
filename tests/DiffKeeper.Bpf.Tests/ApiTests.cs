using System.Runtime.InteropServices;
using DiffKeeper.Bpf.Tests.Infrastructure;

namespace DiffKeeper.Bpf.Tests;

/// <summary>The parts of the API that need no BPF: errors before the kernel is asked, and encodings.</summary>
public partial class ApiTests
{
    [Fact]
    public void LoadNamesAMissingObjectFile()
    {
        var ex = Assert.Throws<BpfException>(() => ChangeCapture.Load("/nonexistent/diffkeeper.bpf.o"));
        Assert.Contains("/nonexistent/diffkeeper.bpf.o", ex.Message);
        Assert.Contains("does not exist", ex.Message);
    }

    [Fact]
    public void LoadRejectsAFileThatIsNotABpfObject()
    {
        Skip.IfNot(File.Exists("/sys/kernel/btf/vmlinux"));
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "not an ELF file");
            var ex = Assert.Throws<BpfException>(() => ChangeCapture.Load(path));
            Assert.Contains("could not open", ex.Message);
            Assert.Contains("libbpf:", ex.Message); // libbpf's own diagnosis is carried along
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData(254u, 0u)]
    [InlineData(8u, 17u)]
    [InlineData(259u, 300u)]
    [InlineData(4095u, 1048575u)] // the largest major (12 bits) and minor (20 bits) a kernel dev_t holds
    public void KernelDevicesConvertToTheStDevEncoding(uint major, uint minor)
    {
        ulong kernel = ((ulong)major << 20) | minor; // super_block.s_dev: MKDEV(major, minor)
        Assert.Equal(Libc.MakeDev(major, minor), ChangeCapture.KernelDevToUser(kernel));
    }

    [Fact]
    public void MountNamespaceOfIsTheInodeOfTheNamespaceFile()
    {
        Skip.IfNot(File.Exists("/proc/self/ns/mnt"));
        string stat = BpfEnv.Run("stat", "-L", "-c", "%i", $"/proc/{Environment.ProcessId}/ns/mnt").Trim();
        Assert.Equal(ulong.Parse(stat), ChangeCapture.MountNamespaceOf(Environment.ProcessId));
        Assert.Throws<BpfException>(() => ChangeCapture.MountNamespaceOf(int.MaxValue));
    }
}
