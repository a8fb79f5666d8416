// SPDX-License-Identifier: GPL-2.0
//
// DiffKeeper change capture: learns WHICH inodes a tracked container dirtied, WHEN and BY WHOM, without sitting
// in the write path. See docs/bpf.md for the whole design and what the kernel really reports per operation.
//
// Why these hooks (measured on the reference kernel, see DESIGN.md "Facts measured"):
//  - fentry/fexit, LSM and kprobes are unavailable there; raw tracepoints work and need no tracefs.
//  - writeback:writeback_dirty_folio fires when a data page of a file FIRST becomes dirty (write(2), mmap stores,
//    fallocate-zeroing...), in the writer's context. A second write to a still-dirty page raises nothing, so the
//    cost is per page dirtied, not per syscall.
//  - writeback:writeback_mark_inode_dirty fires when an inode is marked dirty: timestamps (every write ticks
//    mtime, chmod/chown/setxattr/truncate tick ctime) and, for namespace operations, the PARENT DIRECTORY
//    (create, unlink, rename, mkdir, rmdir, symlink, link change the directory's mtime). Also in the writer's
//    context.
//  - Any syscalls:sys_enter_* hook costs ~0.3 us on every syscall of the node; a ring-buffer record per write
//    costs 5x. So: no per-syscall hook and no ring buffer.
//
// Why coalescing in the kernel: user space only needs "this inode changed since the last frame, last changed at
// T by pid/comm". A hash map keyed by (dev, ino) turns any number of events into one entry per inode per frame
// (~100 ms); user space drains it on a timer. A full map is never silent: the event is counted as LOST.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// Change kinds (bitmask); mirrored by DiffKeeper.Bpf.ChangeKinds.
#define DK_DATA 1 /* a data page became dirty (writeback_dirty_folio) */
#define DK_META 2 /* inode attributes/timestamps changed (writeback_mark_inode_dirty, non-page flags) */
#define DK_DIR 4  /* the inode is a directory: its entries changed (create/unlink/rename/...) */

#define DK_S_IFMT 00170000
#define DK_S_IFDIR 0040000

// Counter slots in dk_counters; mirrored by DiffKeeper.Bpf.
#define DK_CNT_EVENTS 0 /* hook hits in a tracked mount namespace */
#define DK_CNT_MERGED 1 /* of those, folded into an entry already in the dirty set */
#define DK_CNT_LOST 2   /* of those, dropped because the dirty set was full */
#define DK_CNT_MAX 3

// Key and value layouts are read by user space (DiffKeeper.Bpf.Native): keep them in step.
struct dk_key {
	__u64 dev; // kernel dev_t of the inode's super block (MAJOR<<20 | MINOR); user space converts to st_dev
	__u64 ino;
};

struct dk_value {
	__u64 first_ns; // bpf_ktime_get_boot_ns() of the first event since the last drain
	__u64 last_ns;  // ... of the last one
	__u32 slot;     // the container slot of the mount namespace of the LAST writer
	__u32 pid;      // tgid of the last writer (as seen from the initial pid namespace)
	__u32 merged;   // events folded into this entry after the first
	__u8 kinds;     // DK_* bits seen since the last drain
	__u8 pad[3];
	char comm[16];  // comm of the last writer
};

// Tracked mount namespaces: ns inode number -> container slot. Filled by user space (Track/Untrack).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} dk_tracked SEC(".maps");

// The dirty set. Plain HASH, not LRU: an LRU map would evict entries silently; here an insert into a full map
// fails and is counted in DK_CNT_LOST. User space may shrink/grow max_entries before load.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dk_key);
	__type(value, struct dk_value);
} dk_dirty SEC(".maps");

// Per-CPU counters: no atomics on the hot path; user space sums the CPUs.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DK_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dk_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&dk_counters, &which);
	if (c)
		*c += 1;
}

// Returns the slot of the current task's mount namespace, or NULL when it is not tracked. This is the first
// thing every hook does, so an untracked writer (the rest of the node) costs one hash lookup.
static __always_inline __u32 *tracked_slot(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	if (!mntns) // kernel threads on their way out have no nsproxy
		return NULL;
	return bpf_map_lookup_elem(&dk_tracked, &mntns);
}

static __always_inline void record(struct inode *inode, __u8 kinds, __u32 slot)
{
	struct dk_key key = {};
	struct dk_value val = {};
	struct dk_value *old;
	__u64 now = bpf_ktime_get_boot_ns();
	__u16 mode;
	long err;

	if (!inode)
		return;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);
	mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & DK_S_IFMT) == DK_S_IFDIR)
		kinds |= DK_DIR;

	count(DK_CNT_EVENTS);

	val.last_ns = now;
	val.slot = slot;
	val.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(val.comm, sizeof(val.comm));

	// Read-modify-replace instead of writing through the looked-up pointer: a replace happens under the
	// bucket lock, so it can never land in an element user space is draining (lookup_and_delete_batch) or
	// one the map has already recycled for another key. If the entry vanished meanwhile (drained), the replace
	// fails with ENOENT and we insert a fresh entry below: the event still reaches user space.
	old = bpf_map_lookup_elem(&dk_dirty, &key);
	if (old) {
		val.first_ns = old->first_ns;
		val.kinds = old->kinds | kinds;
		val.merged = old->merged + 1;
		if (bpf_map_update_elem(&dk_dirty, &key, &val, BPF_EXIST) == 0) {
			count(DK_CNT_MERGED);
			return;
		}
	}
	val.first_ns = now;
	val.kinds = kinds;
	val.merged = 0;
	err = bpf_map_update_elem(&dk_dirty, &key, &val, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -17 /* EEXIST: another CPU inserted it just now */) {
		old = bpf_map_lookup_elem(&dk_dirty, &key);
		if (old) {
			val.first_ns = old->first_ns;
			val.kinds |= old->kinds;
			val.merged = old->merged + 1;
			if (bpf_map_update_elem(&dk_dirty, &key, &val, BPF_EXIST) == 0) {
				count(DK_CNT_MERGED);
				return;
			}
		}
	}
	// E2BIG/ENOMEM: the dirty set is full (user space fell behind). Never silent.
	count(DK_CNT_LOST);
}

// writeback_dirty_folio(struct folio *folio, struct address_space *mapping): a data page became dirty.
// mapping->host is the inode that owns the page cache: on overlayfs that is the UPPER file system's inode
// (overlay has no page cache of its own), which is exactly the file user space will read from the upper dir.
SEC("raw_tracepoint/writeback_dirty_folio")
int dk_dirty_folio(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 *slot = tracked_slot();
	struct address_space *mapping;

	if (!slot)
		return 0;
	mapping = (struct address_space *)ctx->args[1];
	if (!mapping) {
		struct folio *folio = (struct folio *)ctx->args[0];
		mapping = BPF_CORE_READ(folio, mapping);
	}
	if (!mapping)
		return 0;
	record(BPF_CORE_READ(mapping, host), DK_DATA, *slot);
	return 0;
}

// writeback_mark_inode_dirty(struct inode *inode, int flags): an inode was marked dirty. I_DIRTY_PAGES alone is
// the echo of a page becoming dirty (filemap_dirty_folio raises it right after writeback_dirty_folio, which
// already recorded DATA): skipped, which halves the map work of a large write. Anything else (I_DIRTY_SYNC,
// I_DIRTY_DATASYNC, I_DIRTY_TIME) means attributes or timestamps changed: META. On a directory, that is how
// create/unlink/rename/mkdir/rmdir/symlink/link show up (its mtime changes); DK_DIR is added by record().
SEC("raw_tracepoint/writeback_mark_inode_dirty")
int dk_mark_inode_dirty(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 *slot = tracked_slot();
	struct inode *inode;
	__u32 flags, meta;

	if (!slot)
		return 0;
	inode = (struct inode *)ctx->args[0];
	flags = (__u32)ctx->args[1];

	// The I_DIRTY_* values moved in 6.18 (enum inode_state_flags_t): take them from the running kernel's BTF,
	// falling back to the long-standing #define values on kernels without that enum.
	if (bpf_core_enum_value_exists(enum inode_state_flags_t, I_DIRTY_SYNC)) {
		meta = bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_SYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_DATASYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_TIME);
	} else {
		meta = (1 << 0) | (1 << 1) | (1 << 11);
	}
	if (!(flags & meta))
		return 0;
	record(inode, DK_META, *slot);
	return 0;
}
