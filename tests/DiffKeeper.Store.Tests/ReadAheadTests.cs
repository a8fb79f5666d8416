using System.Text;
using DiffKeeper.Store.Ingest;
using DiffKeeper.TestSupport;
using Tmds.Linux;
using Xunit;
using Libc = DiffKeeper.Store.Native.Libc;

namespace DiffKeeper.Store.Tests;

/// <summary>
/// The tree ingest's read-ahead thread, against the real page cache of a disk file system: a queued file's pages
/// come into the cache before any worker reads them, never more than the window ahead of the workers' reads, and
/// the caller's pacer still sees every byte the workers read.
/// </summary>
public sealed unsafe class ReadAheadTests
{
    private const long MiB = 1 << 20;
    private const int PROT_READ = 1, MAP_SHARED = 1, POSIX_FADV_DONTNEED = 4;

    [Fact]
    public void A_queued_file_is_read_into_the_page_cache_before_a_worker_reads_it()
    {
        using var dir = new TempDir("dk-readahead-", onDisk: true);
        var path = WriteEvicted(dir, "f.bin", 12 * MiB);
        Assert.Equal(0, ResidentPages(path, 0, 12 * MiB)); // the test means something only if the file left the cache

        using var ra = new ReadAhead(null);
        ra.Add(Z(path), 12 * MiB);
        Assert.True(WaitFor(() => ResidentPages(path, 0, 12 * MiB) == 12 * MiB / Environment.SystemPageSize),
            $"only {ResidentPages(path, 0, 12 * MiB)} pages of 12 MiB were read ahead");
    }

    [Fact]
    public void It_stays_within_its_window_of_the_workers_reads()
    {
        using var dir = new TempDir("dk-readahead-", onDisk: true);
        long size = 160 * MiB;
        var path = WriteEvicted(dir, "big.bin", size);
        long tail = size - 64 * MiB; // beyond the 64 MiB window
        using var ra = new ReadAhead(null);
        ra.Add(Z(path), size);
        Assert.True(WaitFor(() => ResidentPages(path, 0, 60 * MiB) == 60 * MiB / Environment.SystemPageSize), "the head was not read ahead");
        Thread.Sleep(300);
        Assert.Equal(0, ResidentPages(path, size - 32 * MiB, 32 * MiB)); // nothing read while no worker read anything

        ra.Consumed(tail); // the workers caught up: the rest may come in now
        Assert.True(WaitFor(() => ResidentPages(path, size - 32 * MiB, 32 * MiB) == 32 * MiB / Environment.SystemPageSize),
            "the tail was not read ahead after the workers' reads moved the window");
    }

    [Fact]
    public void The_callers_pacer_sees_every_byte_a_tree_ingest_reads()
    {
        using var f = new StoreFixture();
        var up = f.Temp.CreateSub("up");
        for (int i = 0; i < 20; i++) Tree.WriteFile(up, Encoding.UTF8.GetBytes($"f{i}.bin"), Tree.Random(100_000 * (i + 1), i));
        var pacer = new CountingPacer();
        var s = new Ingester(f.Store).IngestTree(f.NewRecording(), up, f.At(0), pacer: pacer);
        Assert.Equal(Enumerable.Range(1, 20).Sum(i => 100_000L * i), s.BytesRead);
        Assert.Equal(s.BytesRead, Interlocked.Read(ref pacer.Bytes));
    }

    private sealed class CountingPacer : IIngestPacer
    {
        public long Bytes;
        public void Consumed(long bytes) => Interlocked.Add(ref Bytes, bytes);
    }

    private static byte[] Z(string path) => Encoding.UTF8.GetBytes(path + "\0");

    private static bool WaitFor(Func<bool> done)
    {
        var until = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < until)
        {
            if (done()) return true;
            Thread.Sleep(20);
        }
        return done();
    }

    /// <summary>Writes a file of random bytes, makes it durable and drops its pages from the page cache.</summary>
    private static string WriteEvicted(TempDir dir, string name, long size)
    {
        var path = dir[name];
        var rng = new Random(7);
        var buf = new byte[MiB];
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            for (long off = 0; off < size; off += MiB)
            {
                rng.NextBytes(buf);
                fs.Write(buf);
            }
            fs.Flush(flushToDisk: true);
        }
        int fd;
        fixed (byte* p = Z(path)) fd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        Assert.True(fd >= 0);
        try { Assert.Equal(0, Libc.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)); }
        finally { Libc.close(fd); }
        return path;
    }

    /// <summary>How many pages of [offset, offset+length) are in the page cache (mincore of a shared mapping).</summary>
    private static long ResidentPages(string path, long offset, long length)
    {
        int fd;
        fixed (byte* p = Z(path)) fd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        Assert.True(fd >= 0);
        try
        {
            void* map = LibC.mmap(null, (size_t)(int)length, PROT_READ, MAP_SHARED, fd, offset);
            Assert.True(map != (void*)-1, "mmap failed");
            try
            {
                int pages = (int)(length / Environment.SystemPageSize);
                var vec = new byte[pages];
                fixed (byte* v = vec) Assert.Equal(0, LibC.mincore(map, (size_t)(int)length, v));
                return vec.Count(b => (b & 1) != 0);
            }
            finally { LibC.munmap(map, (size_t)(int)length); }
        }
        finally { Libc.close(fd); }
    }
}
