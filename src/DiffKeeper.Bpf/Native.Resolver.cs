using System.Runtime.InteropServices;
using DiffKeeper.Common.Native;

namespace DiffKeeper.Bpf;

internal static partial class Native
{
    /// <summary>Binds the libbpf.so.1 imports to the copy <see cref="Libbpf"/> picks (the system's, else the package's
    /// bundled one) before the first call into libbpf.</summary>
    static Native() =>
        NativeLibrary.SetDllImportResolver(typeof(Native).Assembly,
            (name, _, _) => name == Libbpf.Soname ? Libbpf.Get().Handle : 0);
}
