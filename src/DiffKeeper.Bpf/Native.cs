using System.Runtime.InteropServices;

namespace DiffKeeper.Bpf;

/// <summary>
/// The slice of libbpf 1.1 (libbpf.so.1, Debian's libbpf1) and libc that the capture uses, bound at compile time.
/// libbpf 1.x reports errors as a negative errno return (int functions) or NULL + errno (pointer functions).
/// </summary>
internal static unsafe partial class Native
{
    private const string Lib = "libbpf.so.1";

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial nint bpf_object__open_file(string path, nint opts);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bpf_object__load(nint obj);
    [LibraryImport(Lib)] public static partial void bpf_object__close(nint obj);
    [LibraryImport(Lib)] public static partial nint bpf_object__next_program(nint obj, nint prev);
    [LibraryImport(Lib)] public static partial nint bpf_program__name(nint prog);
    [LibraryImport(Lib)] public static partial nint bpf_program__section_name(nint prog);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint bpf_program__attach(nint prog);
    [LibraryImport(Lib)] public static partial int bpf_link__destroy(nint link);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint bpf_object__find_map_by_name(nint obj, string name);
    [LibraryImport(Lib)] public static partial int bpf_map__fd(nint map);
    [LibraryImport(Lib)] public static partial int bpf_map__set_max_entries(nint map, uint maxEntries);
    [LibraryImport(Lib)] public static partial uint bpf_map__max_entries(nint map);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bpf_map_update_elem(int fd, void* key, void* value, ulong flags);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bpf_map_delete_elem(int fd, void* key);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bpf_map_lookup_elem(int fd, void* key, void* value);
    [LibraryImport(Lib, SetLastError = true)]
    public static partial int bpf_map_lookup_and_delete_batch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, nint opts);
    [LibraryImport(Lib)] public static partial int bpf_program__fd(nint prog);
    [LibraryImport(Lib, SetLastError = true)] public static partial int bpf_obj_get_info_by_fd(int fd, void* info, uint* infoLen);
    [LibraryImport(Lib)] public static partial int bpf_program__set_autoload(nint prog, [MarshalAs(UnmanagedType.U1)] bool autoload);
    [LibraryImport(Lib)] [return: MarshalAs(UnmanagedType.U1)] public static partial bool bpf_program__autoload(nint prog);
    [LibraryImport(Lib, SetLastError = true)] public static partial nint btf__load_vmlinux_btf();
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int btf__find_by_name_kind(nint btf, string name, uint kind);
    [LibraryImport(Lib)] public static partial void btf__free(nint btf);
    [LibraryImport(Lib)] public static partial int libbpf_num_possible_cpus();
    [LibraryImport(Lib)] public static partial nint libbpf_set_print(nint fn);
    [LibraryImport(Lib)] public static partial int libbpf_strerror(int err, byte* buf, nuint size);

    // libc: Tmds.LibC (0.5) has neither vsnprintf (libbpf hands its log callback a va_list) nor clock_gettime.
    [LibraryImport("libc")] public static partial int vsnprintf(byte* buf, nuint size, nint format, nint args);
    [LibraryImport("libc", SetLastError = true)] public static partial int clock_gettime(int clock, Timespec* ts);

    public const int CLOCK_REALTIME = 0, CLOCK_BOOTTIME = 7;
    public const ulong BPF_ANY = 0;
    public const uint BTF_KIND_TYPEDEF = 8;
    public const int EPERM = 1, ENOENT = 2, E2BIG = 7, ENOMEM = 12, EACCES = 13, EINVAL = 22, ENOTSUP = 95;

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec { public long Sec; public long Nsec; }

    /// <summary>struct dk_key in bpf/diffkeeper.bpf.c.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct DirtyKey { public ulong Dev; public ulong Ino; }

    /// <summary>struct dk_watch_key in bpf/diffkeeper.bpf.c.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct WatchKey { public ulong Ino; public uint Slot, Pad; }

    /// <summary>struct dk_value in bpf/diffkeeper.bpf.c (48 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct DirtyValue
    {
        public ulong FirstNs, LastNs;
        public uint Slot, Pid, Merged;
        public byte Kinds, Pad0, Pad1, Pad2;
        public fixed byte Comm[16];
    }
}
