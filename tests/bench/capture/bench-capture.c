// Per-syscall overhead of the change capture (docs/bpf.md, "Kernel facts the design rests on": the bar is a loop of
// pwrite(64 B) + write(0 B) pairs, ~1.2 us per pair, where a sys_enter hook cost +0.3 us and a ring-buffer record 5x).
//
//   bench-capture OBJECT MODE LOOP PAIRS FILE [stats]
//     MODE  baseline   nothing loaded
//           untracked  diffkeeper.bpf.o loaded and attached, another mount namespace tracked (the rest of the node)
//           tracked    attached, and this process's own mount namespace tracked (a container's write path)
//     LOOP  write0     pwrite(64 B at offset 0) + write(0 B): the baseline loop (page stays dirty: few events)
//           fstat      pwrite(64 B) + fstat: the worst case on a multigrain file system, where a stat between two
//                      writes makes the next write take a fresh fine-grained ctime: one event per write
// Prints "ns_per_pair events merged lost". With "stats", the kernel's BPF run-time statistics are on (they add
// two clock reads per program run) and "runs ns_per_run" of our programs follow: the cost of one event, free of
// the machine's noise. Run it in its own mount namespace (unshare -m), so that tracking it
// tracks nothing else. Loads the object the way DiffKeeper.Bpf does (libbpf, same maps, same programs).
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

// CPU time of this process (user + system, which includes our programs run inside its syscalls), not wall time:
// on a shared machine, wall time also counts the time other processes held the CPU, which swamped the differences.
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 6 && !(argc == 7 && strcmp(argv[6], "stats") == 0)) {
		fprintf(stderr, "usage: %s OBJECT baseline|untracked|tracked write0|fstat PAIRS FILE\n", argv[0]);
		return 2;
	}
	const char *mode = argv[2], *loop = argv[3];
	long pairs = atol(argv[4]);
	struct bpf_object *obj = NULL;
	struct bpf_link *links[16];
	int nlinks = 0, counters_fd = -1;

	libbpf_set_print(quiet);
	int stats_fd = argc == 7 ? bpf_enable_stats(BPF_STATS_RUN_TIME) : -1;
	if (argc == 7 && stats_fd < 0) { perror("bpf_enable_stats"); return 1; }
	if (strcmp(mode, "baseline") != 0) {
		obj = bpf_object__open_file(argv[1], NULL);
		if (!obj || bpf_object__load(obj)) { perror("load"); return 1; }
		struct stat st;
		if (stat("/proc/self/ns/mnt", &st)) { perror("ns"); return 1; }
		uint64_t ns = st.st_ino;
		if (strcmp(mode, "untracked") == 0)
			ns = 1; // no namespace has inode number 1: attached, filtering every event out
		uint32_t slot = 1;
		if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "dk_tracked")), &ns, &slot, BPF_ANY)) {
			perror("track"); return 1;
		}
		counters_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "dk_counters"));
		struct bpf_program *prog;
		bpf_object__for_each_program(prog, obj) {
			if (strncmp(bpf_program__name(prog), "dk_fallback_", 12) == 0)
				continue;
			links[nlinks] = bpf_program__attach(prog);
			if (!links[nlinks]) { perror(bpf_program__name(prog)); return 1; }
			nlinks++;
		}
	}

	int fd = open(argv[5], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) { perror(argv[5]); return 1; }
	char buf[64];
	memset(buf, 'x', sizeof buf);
	struct stat st;
	int use_fstat = strcmp(loop, "fstat") == 0;
	for (long i = 0; i < pairs / 10; i++) { // warm up: page allocated, caches hot
		pwrite(fd, buf, sizeof buf, 0);
		if (use_fstat) fstat(fd, &st); else write(fd, buf, 0);
	}
	uint64_t t0 = now_ns();
	for (long i = 0; i < pairs; i++) {
		if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf) { perror("pwrite"); return 1; }
		if (use_fstat) fstat(fd, &st); else write(fd, buf, 0);
	}
	uint64_t t1 = now_ns();
	close(fd);
	unlink(argv[5]);

	unsigned long long sums[3] = {0};
	if (obj) {
		int cpus = libbpf_num_possible_cpus();
		unsigned long long *v = calloc(cpus, sizeof *v);
		for (uint32_t k = 0; k < 3; k++)
			if (bpf_map_lookup_elem(counters_fd, &k, v) == 0)
				for (int c = 0; c < cpus; c++) sums[k] += v[c];
		free(v);
		unsigned long long runs = 0, run_ns = 0;
		struct bpf_program *prog;
		bpf_object__for_each_program(prog, obj) {
			struct bpf_prog_info info;
			__u32 len = sizeof info;
			memset(&info, 0, sizeof info);
			if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
				runs += info.run_cnt;
				run_ns += info.run_time_ns;
			}
		}
		if (stats_fd >= 0) {
			printf("%.1f %llu %llu %llu %llu %.1f\n", (double)(t1 - t0) / pairs, sums[0], sums[1], sums[2], runs,
			       runs ? (double)run_ns / runs : 0.0);
			close(stats_fd);
			stats_fd = -2;
		}
		for (int i = 0; i < nlinks; i++) bpf_link__destroy(links[i]);
		bpf_object__close(obj);
	}
	if (stats_fd != -2)
		printf("%.1f %llu %llu %llu\n", (double)(t1 - t0) / pairs, sums[0], sums[1], sums[2]);
	return 0;
}
