// SPDX-License-Identifier: GPL-2.0
//
// DiffKeeper change capture: learns WHICH inodes a tracked container changed, WHEN and BY WHOM, without sitting
// in the write path. docs/bpf.md has the whole design and what the kernel really reports for each operation.
//
// Why these hooks (measured on the reference kernel, Linux 6.18; see docs/bpf.md, "Kernel facts the design rests on"):
//  - fentry/fexit, LSM and kprobes are unavailable there; raw tracepoints work and need no tracefs.
//  - Any syscalls:sys_enter_* hook costs ~0.3 us on every syscall of the node, and a ring-buffer record per write
//    costs 5x: so no per-syscall hook and no ring buffer. The hooks below fire on STATE CHANGES, in the writer's
//    context (its mount namespace, pid, comm):
//  - writeback:writeback_dirty_folio: a data page of a file FIRST becomes dirty (write(2), mmap stores, ...). A
//    second write to a still-dirty page raises nothing: the cost is per page dirtied, not per syscall.
//  - timestamp:ctime_ns_xchg / ctime_xchg_skip (multigrain file systems: ext4, xfs, btrfs, tmpfs since 6.13) and
//    timestamp:inode_set_ctime_to_ts (the others): an inode's ctime is being set. EVERY metadata change sets ctime:
//    chmod, chown, setxattr, truncate, the mtime tick of a write or mmap store, the link count of an unlinked or
//    linked inode, a renamed inode, and, for create/unlink/rename/mkdir/rmdir/symlink/link/mknod, the PARENT
//    DIRECTORY. ctime_xchg_skip is the same change landing in the same timestamp tick: still a change.
//  - Not writeback:writeback_mark_inode_dirty, measured: ext4 never raises it for directory entry changes nor for
//    setxattr (ext4 journals those inodes itself), while it does raise it for atime updates of files merely READ
//    (relatime): noise. It is kept only as the fallback for kernels without the timestamp tracepoints (< 6.13);
//    user space attaches it only when they are missing.
//
// Why coalescing in the kernel: user space needs "this inode changed since the last frame, first at T0, last at
// T1 by pid/comm", not every event. A hash map keyed by (dev, ino) turns any number of events into one entry per
// inode per frame (~100 ms), which user space drains on a timer. A full map is never silent: counted as LOST.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// Change kinds (bitmask); mirrored by DiffKeeper.Bpf.ChangeKinds.
#define DK_DATA 1 /* a data page became dirty */
#define DK_META 2 /* the inode's ctime was set: attributes, link count, or (with a write) mtime changed */
#define DK_DIR 4  /* the inode is a directory: with META, its entries changed */

#define DK_S_IFMT 00170000
#define DK_S_IFDIR 0040000
#define DK_S_IFREG 0100000
#define DK_S_IFLNK 0120000
#define DK_S_IFCHR 0020000

#define DK_SB_KERNMOUNT (1UL << 22) /* internal mounts: pipefs, sockfs, bdev, anon inodes, shm */
#define DK_SB_NOUSER (1UL << 31)
#define DK_OVERLAYFS_SUPER_MAGIC 0x794c7630

// Counter slots in dk_counters; mirrored by DiffKeeper.Bpf.ChangeCapture.
#define DK_CNT_EVENTS 0 /* recorded events from a tracked mount namespace */
#define DK_CNT_MERGED 1 /* of those, folded into an entry already in the dirty set */
#define DK_CNT_LOST 2   /* of those, dropped because the dirty set was full */
#define DK_CNT_COALESCED 3 /* of those, already covered by a fresh entry of the same writer: the entry left as is */
#define DK_CNT_MAX 4

// How long an entry's last_ns may lag behind its writer's events: within this, an event of the writer that last
// updated the entry, of kinds the entry already holds, leaves the entry untouched (see coalesced()).
#define DK_COALESCE_NS 1000000ULL

// Key and value layouts are read by user space (DiffKeeper.Bpf.Native): keep them in step.
struct dk_key {
	__u64 dev; // kernel dev_t of the inode's super block (MAJOR<<20 | MINOR); user space converts to st_dev
	__u64 ino;
};

struct dk_value {
	__u64 first_ns; // bpf_ktime_get_boot_ns() of the first event since the last drain
	__u64 last_ns;  // ... of the last one
	__u32 slot;     // the container slot of the LAST writer's mount namespace
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

// Tracked cgroups (cgroup v2 ids, the inode number of the cgroup's directory in the cgroup2 file system) ->
// slot. For `diffkeeper record -- CMD`: a plain command runs in the host's mount namespace, so it is put in a
// cgroup of its own and everything its process tree changes is attributed through this map. Looked up only
// when the writer's mount namespace is not tracked.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} dk_tracked_cg SEC(".maps");

// How many cgroups dk_tracked_cg holds, kept by user space. An array lookup is a plain load (the verifier inlines
// it), so a node that records containers only pays nothing more for the cgroup path than this load per hook.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} dk_cg_active SEC(".maps");

// The dirty set. Plain HASH, not LRU: an LRU map would evict entries silently; here an insert into a full map
// fails and is counted in DK_CNT_LOST. User space may change max_entries before load.
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

// Per CPU: the last entry this CPU's programs wrote in full, and by which thread. Only a hint that the writer is
// probably about to hit the same entry again; coalesced() checks the entry itself.
struct dk_recent {
	__u64 pid_tgid;
	__u64 inode;       // the struct inode pointer
	struct dk_key key; // its key in dk_dirty (saves reading the super block on the fast path)
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dk_recent);
} dk_recent SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&dk_counters, &which);
	if (c)
		*c += 1;
}

// The slot of the current task's mount namespace (else of its cgroup), or NULL when neither is tracked. Every hook
// does this first, so a writer outside the tracked containers (the rest of the node) costs one hash lookup, and a
// second one only while some command is recorded (dk_cg_active).
static __always_inline __u32 *tracked_slot(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	__u32 zero = 0, *active;
	__u64 cgid;
	__u32 *slot;

	if (!mntns) // an exiting task has no nsproxy any more
		return NULL;
	slot = bpf_map_lookup_elem(&dk_tracked, &mntns);
	if (slot)
		return slot;
	// Not a tracked container: a recorded command's cgroup (v2; on a hybrid v1/v2 host the task's cgroup in the
	// unified hierarchy)?
	active = bpf_map_lookup_elem(&dk_cg_active, &zero);
	if (!active || !*active)
		return NULL;
	cgid = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&dk_tracked_cg, &cgid);
}

// Only inodes user space can find in an upper directory are worth a map entry. Measured noise without this
// filter: a pipe per shell command substitution (pipefs sets ctime on every new pipe), file-system metadata blocks
// dirtied in the block device's page cache (bdev), and overlayfs's own inodes (overlay copies the upper inode's
// times into its inode with inode_set_ctime_to_ts; the upper inode raises the same change itself).
static __always_inline bool interesting(struct inode *inode, __u16 mode)
{
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	unsigned long flags = BPF_CORE_READ(sb, s_flags);

	if (flags & (DK_SB_KERNMOUNT | DK_SB_NOUSER))
		return false;
	if (BPF_CORE_READ(sb, s_magic) == DK_OVERLAYFS_SUPER_MAGIC)
		return false;
	switch (mode & DK_S_IFMT) {
	case DK_S_IFREG:
	case DK_S_IFDIR:
	case DK_S_IFLNK:
		return true;
	case DK_S_IFCHR: // an overlay whiteout is a 0:0 character device; real device nodes are not content
		return BPF_CORE_READ(inode, i_rdev) == 0;
	default: // fifos, sockets, block devices
		return false;
	}
}

// The fast path for a writer's burst of events on one inode (an mmap rewrite dirties a page every few µs, a stream
// of small writes sets ctime every tick): when this CPU's last full update was this thread on this inode, and the
// entry in the dirty set still holds this writer's process, every kind of this event, and a last_ns less than
// DK_COALESCE_NS old, the event is already in the set: no tracked-namespace lookup, no comm, no replace. Measured
// (docs/bpf.md, bpf_stats): ~815 ns per event for the full tracked run, ~325 ns with this. Checked BEFORE
// tracked_slot(): an untracked writer leaves at the first comparison (its thread is never in dk_recent), and
// skipping is safe for any writer because the entry proves its process was tracked less than DK_COALESCE_NS ago.
// What it costs the recording: last_ns (the version's time) may lag the last event by < DK_COALESCE_NS. If the
// drain takes the entry between the lookup and here, the event precedes that drain: like a replace landing just
// before it.
static __always_inline struct dk_recent *recent_of(__u64 id)
{
	__u32 zero = 0;
	struct dk_recent *recent = bpf_map_lookup_elem(&dk_recent, &zero);

	return recent && recent->pid_tgid == id ? recent : NULL;
}

static __always_inline bool coalesced(struct dk_recent *recent, struct inode *inode, __u8 kinds, __u64 id)
{
	struct dk_value *old;
	__u64 now;

	if (!recent || !inode || recent->inode != (__u64)inode)
		return false;
	// The same pointer may be another inode by now (freed and reused): the inode number says.
	if (BPF_CORE_READ(inode, i_ino) != recent->key.ino)
		return false;
	old = bpf_map_lookup_elem(&dk_dirty, &recent->key);
	if (!old || old->pid != (__u32)(id >> 32) || (old->kinds & kinds) != kinds)
		return false;
	now = bpf_ktime_get_boot_ns();
	if (now - old->last_ns >= DK_COALESCE_NS)
		return false;
	count(DK_CNT_EVENTS);
	count(DK_CNT_COALESCED);
	return true;
}

// Remembers that this CPU just wrote the entry of this inode for this thread (see coalesced()).
static __always_inline void remember(struct inode *inode, __u64 id, struct dk_key *key)
{
	__u32 zero = 0;
	struct dk_recent *recent = bpf_map_lookup_elem(&dk_recent, &zero);

	if (recent) {
		recent->pid_tgid = id;
		recent->inode = (__u64)inode;
		recent->key = *key;
	}
}

static __always_inline void record(struct inode *inode, __u8 kinds, __u32 slot)
{
	struct dk_key key = {};
	struct dk_value val = {};
	struct dk_value *old;
	__u64 now, id;
	__u16 mode;
	long err;

	if (!inode)
		return;
	mode = BPF_CORE_READ(inode, i_mode);
	if (!interesting(inode, mode))
		return;
	if ((mode & DK_S_IFMT) == DK_S_IFDIR)
		kinds |= DK_DIR;
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(inode, i_ino);

	count(DK_CNT_EVENTS);

	now = bpf_ktime_get_boot_ns();
	val.last_ns = now;
	val.slot = slot;
	id = bpf_get_current_pid_tgid();
	val.pid = id >> 32;
	bpf_get_current_comm(val.comm, sizeof(val.comm));

	// Read-modify-replace instead of writing through the looked-up pointer: a replace happens under the
	// bucket lock, so it never lands in an element user space is draining (lookup_and_delete_batch) or one the
	// map has already recycled for another key. If the entry was drained meanwhile, the replace fails with
	// ENOENT and a fresh entry is inserted below: the event still reaches user space, in the next drain.
	old = bpf_map_lookup_elem(&dk_dirty, &key);
	if (old) {
		val.first_ns = old->first_ns;
		val.kinds = old->kinds | kinds;
		val.merged = old->merged + 1;
		if (bpf_map_update_elem(&dk_dirty, &key, &val, BPF_EXIST) == 0) {
			count(DK_CNT_MERGED);
			remember(inode, id, &key);
			return;
		}
	}
	val.first_ns = now;
	val.kinds = kinds;
	val.merged = 0;
	err = bpf_map_update_elem(&dk_dirty, &key, &val, BPF_NOEXIST);
	if (err == 0) {
		remember(inode, id, &key);
		return;
	}
	if (err == -17 /* EEXIST: another CPU inserted it just now */) {
		old = bpf_map_lookup_elem(&dk_dirty, &key);
		if (old) {
			val.first_ns = old->first_ns;
			val.kinds |= old->kinds;
			val.merged = old->merged + 1;
			if (bpf_map_update_elem(&dk_dirty, &key, &val, BPF_EXIST) == 0) {
				count(DK_CNT_MERGED);
				remember(inode, id, &key);
				return;
			}
		}
	}
	// E2BIG: the dirty set is full (user space fell behind). Never silent.
	count(DK_CNT_LOST);
}

static __always_inline int on_ctime(struct inode *inode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 *slot;

	if (coalesced(recent_of(id), inode, DK_META, id))
		return 0;
	slot = tracked_slot();
	if (slot)
		record(inode, DK_META, *slot);
	return 0;
}

// The inode owning the page cache that a folio of writeback_dirty_folio belongs to.
static __always_inline struct inode *dirtied_inode(struct bpf_raw_tracepoint_args *ctx, struct address_space *mapping)
{
	if (!mapping) {
		struct folio *folio = (struct folio *)ctx->args[0];
		mapping = BPF_CORE_READ(folio, mapping);
	}
	return mapping ? BPF_CORE_READ(mapping, host) : NULL;
}

// writeback_dirty_folio(struct folio *folio, struct address_space *mapping): a data page became dirty.
// mapping->host owns the page cache: on overlayfs that is the UPPER file system's inode (overlay has no page
// cache of its own), i.e. the file user space will read from the upper directory.
SEC("raw_tracepoint/writeback_dirty_folio")
int dk_dirty_folio(struct bpf_raw_tracepoint_args *ctx)
{
	struct address_space *mapping = (struct address_space *)ctx->args[1];
	__u64 id = bpf_get_current_pid_tgid();
	struct dk_recent *recent = recent_of(id);
	struct inode *host = NULL;
	__u32 *slot;

	// The mapping is read only for a writer that may take the fast path or is tracked: the rest of the node pays
	// one per-CPU load and a comparison more than before, then the tracked-namespace lookup.
	if (recent) {
		host = dirtied_inode(ctx, mapping);
		if (coalesced(recent, host, DK_DATA, id))
			return 0;
	}
	slot = tracked_slot();
	if (!slot)
		return 0;
	if (!host)
		host = dirtied_inode(ctx, mapping);
	if (host)
		record(host, DK_DATA, *slot);
	return 0;
}

// ctime_ns_xchg(struct inode *inode, u32 old, u32 new, u32 cur): a multigrain file system set a new ctime.
SEC("raw_tracepoint/ctime_ns_xchg")
int dk_ctime_xchg(struct bpf_raw_tracepoint_args *ctx)
{
	return on_ctime((struct inode *)ctx->args[0]);
}

// ctime_xchg_skip(struct inode *inode, struct timespec64 *ctime): a change whose ctime equals the current one
// (same tick, nobody looked at the time since): a change nonetheless.
SEC("raw_tracepoint/ctime_xchg_skip")
int dk_ctime_skip(struct bpf_raw_tracepoint_args *ctx)
{
	return on_ctime((struct inode *)ctx->args[0]);
}

// inode_set_ctime_to_ts(struct inode *inode, struct timespec64 *ts): ctime set on a file system without
// multigrain timestamps (and by a few explicit setters).
SEC("raw_tracepoint/inode_set_ctime_to_ts")
int dk_ctime_set(struct bpf_raw_tracepoint_args *ctx)
{
	return on_ctime((struct inode *)ctx->args[0]);
}

// Fallback for kernels without the timestamp tracepoints (< 6.13), attached by user space only then:
// writeback_mark_inode_dirty(struct inode *inode, int flags). I_DIRTY_PAGES alone echoes a page becoming dirty
// (already DATA); the other flags mean timestamps/attributes. Misses what ext4 journals itself (see the top).
SEC("raw_tracepoint/writeback_mark_inode_dirty")
int dk_fallback_mark_inode_dirty(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 *slot = tracked_slot();
	__u32 flags, meta;

	if (!slot)
		return 0;
	flags = (__u32)ctx->args[1];
	// The I_DIRTY_* values moved in 6.18 (enum inode_state_flags_t): take them from the running kernel's BTF,
	// falling back to the long-standing #define values on kernels without that enum.
	if (bpf_core_enum_value_exists(enum inode_state_flags_t, I_DIRTY_SYNC))
		meta = bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_SYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_DATASYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_TIME);
	else
		meta = (1 << 0) | (1 << 1) | (1 << 11);
	if (flags & meta)
		record((struct inode *)ctx->args[0], DK_META, *slot);
	return 0;
}
