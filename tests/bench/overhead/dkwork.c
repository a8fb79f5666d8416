/* dkwork: the in-container workloads of `make bench-overhead` (and of the recorder's end-to-end tests, which need
 * an mmap writer the busybox image lacks). Built static so it runs in the busybox test image. Each workload times
 * itself with CLOCK_MONOTONIC inside the container and prints one line: "<workload> <elapsed ns> <ops>".
 *
 *   dkwork writes DIR       (a) 1.2 M write(2)s of 64 bytes to one file, then fdatasync
 *   dkwork bulk DIR         (b) 1 GiB in 1 MiB writes, then fdatasync
 *   dkwork files DIR        (c) 3,000 small files created (then a 300 ms pause, untimed), then all removed
 *   dkwork mmap DIR         (d) a 64 MiB file mapped shared and rewritten page by page (3 passes), then msync
 *   dkwork churn DIR SECS   (e) 20 files rewritten in turn for SECS seconds, every change a new counter value;
 *                               prints the number of changes made (ops) — more is better
 *   dkwork mmapwrite FILE TEXT   writes TEXT at offset 0 of an existing FILE through a shared mapping (tests)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "dkwork: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int open_in(const char *dir, const char *name, int flags) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0) die(path);
    return fd;
}

static void write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        buf += w; n -= (size_t)w;
    }
}

/* The process's CPU time (user + system, ns): on a loaded machine it varies far less than wall time, and it holds
   what the eBPF programs cost in the writer's context (they run inside its syscalls). */
static long long cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(const char *name, int64_t t0, long ops) {
    printf("%s %lld %ld %lld\n", name, (long long)(now_ns() - t0), ops, cpu_ns());
    fflush(stdout);
}

static int wl_writes(const char *dir) {
    int fd = open_in(dir, "writes.dat", O_WRONLY | O_CREAT | O_TRUNC);
    char buf[64];
    memset(buf, 'w', sizeof buf);
    int64_t t0 = now_ns();
    for (long i = 0; i < 1200000; i++) write_all(fd, buf, sizeof buf);
    if (fdatasync(fd) != 0) die("fdatasync");
    report("writes", t0, 1200000);
    close(fd);
    return 0;
}

static int wl_bulk(const char *dir) {
    int fd = open_in(dir, "bulk.dat", O_WRONLY | O_CREAT | O_TRUNC);
    size_t mib = 1 << 20;
    char *buf = malloc(mib);
    if (!buf) die("malloc");
    for (size_t i = 0; i < mib; i++) buf[i] = (char)(i * 2654435761u >> 13);
    int64_t t0 = now_ns();
    for (int i = 0; i < 1024; i++) { buf[0] = (char)i; write_all(fd, buf, mib); }
    if (fdatasync(fd) != 0) die("fdatasync");
    report("bulk", t0, 1024);
    close(fd);
    free(buf);
    return 0;
}

static int wl_files(const char *dir) {
    char path[4096];
    char body[100];
    memset(body, 'f', sizeof body);
    int64_t t0 = now_ns();
    for (int i = 0; i < 3000; i++) {
        snprintf(path, sizeof path, "%s/f%04d", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die(path);
        write_all(fd, body, sizeof body);
        close(fd);
    }
    int64_t created = now_ns() - t0;
    /* Untimed: lets the recorder see all 3,000 files at one moment before they go (checked by the bench). */
    usleep(300000);
    int64_t t1 = now_ns();
    for (int i = 0; i < 3000; i++) {
        snprintf(path, sizeof path, "%s/f%04d", dir, i);
        if (unlink(path) != 0) die(path);
    }
    printf("files %lld %d %lld\n", (long long)(created + now_ns() - t1), 6000, cpu_ns());
    return 0;
}

static int wl_mmap(const char *dir) {
    const size_t size = 64u << 20;
    int fd = open_in(dir, "mmap.dat", O_RDWR | O_CREAT | O_TRUNC);
    if (ftruncate(fd, (off_t)size) != 0) die("ftruncate");
    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    long page = sysconf(_SC_PAGESIZE);
    int64_t t0 = now_ns();
    for (int pass = 0; pass < 3; pass++)
        for (size_t off = 0; off < size; off += (size_t)page) memset(p + off, 'a' + pass, (size_t)page);
    if (msync(p, size, MS_SYNC) != 0) die("msync");
    report("mmap", t0, (long)(3 * (size / (size_t)page)));
    munmap(p, size);
    close(fd);
    return 0;
}

static int wl_churn(const char *dir, int secs) {
    /* Rewrites in place (pwrite of a fixed-width counter), no truncate: a truncate of a file with dirty data makes
     * ext4 start writeback at close (auto_da_alloc), which would time the disk instead of the recorder. */
    char name[64], body[32];
    int fds[20];
    for (int f = 0; f < 20; f++) {
        snprintf(name, sizeof name, "churn%02d.txt", f);
        fds[f] = open_in(dir, name, O_WRONLY | O_CREAT | O_TRUNC);
    }
    int64_t t0 = now_ns(), end = t0 + (int64_t)secs * 1000000000LL;
    long changes = 0;
    while (now_ns() < end) {
        for (int f = 0; f < 20; f++) {
            int n = snprintf(body, sizeof body, "%020ld\n", changes);
            if (pwrite(fds[f], body, (size_t)n, 0) != n) die("pwrite");
            changes++;
        }
    }
    report("churn", t0, changes);
    for (int f = 0; f < 20; f++) close(fds[f]);
    return 0;
}

static int mmapwrite(const char *file, const char *text) {
    int fd = open(file, O_RDWR | O_CLOEXEC);
    if (fd < 0) die(file);
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    size_t n = strlen(text);
    if ((size_t)st.st_size < n) { errno = EINVAL; die("file shorter than the text"); }
    unsigned char *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    memcpy(p, text, n);
    if (msync(p, (size_t)st.st_size, MS_SYNC) != 0) die("msync");
    munmap(p, (size_t)st.st_size);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "writes")) return wl_writes(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "bulk")) return wl_bulk(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "files")) return wl_files(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "mmap")) return wl_mmap(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "churn")) return wl_churn(argv[2], atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "mmapwrite")) return mmapwrite(argv[2], argv[3]);
    fprintf(stderr, "usage: dkwork writes|bulk|files|mmap DIR | churn DIR SECS | mmapwrite FILE TEXT\n");
    return 2;
}
