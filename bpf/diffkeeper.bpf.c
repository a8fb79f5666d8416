// SPDX-License-Identifier: GPL-2.0
//
// DiffKeeper change capture: learns WHICH inodes a tracked container changed, WHEN and BY WHOM, without sitting
// in the write path. docs/bpf.md has the whole design and what the kernel really reports for each operation.
//
// Why these hooks (measured on the reference kernel, Linux 6.18; see docs/bpf.md, "Kernel facts the design rests on"):
//  - fentry/fexit, LSM and kprobes are unavailable there; raw tracepoints work and need no tracefs. They are attached
//    as BTF-typed programs (tp_btf): typed arguments, so kernel fields are read with plain guarded loads instead of
//    a bpf_probe_read_kernel call each (docs/bpf.md, "BTF-typed tracepoint programs").
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
#define DK_OUTSIDE 0x80 /* only in a dk_seen way: the inode lies outside its writer's watched tree (not recorded) */
#define DK_BORN 0x40    /* only in a dk_seen way: a regular file its writer is creating, not named yet (see record()) */

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
	union {
		struct {
			__u8 kinds; // DK_* bits seen since the last drain
			__u8 pad[3];
		};
		__u32 kinds_word; // the same bytes, for an atomic OR of kinds in place (folded())
	};
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

// A recorded command may watch only some directories (`diffkeeper record --dir`): its slot in dk_tracked_cg then
// carries DK_SLOT_WATCHED, dk_watch_fs holds the watched tree's file system and dk_watch its root directory's inode
// number, and the hooks drop the command's changes outside that tree (watched_place()). Containers never set it.
#define DK_SLOT_WATCHED 0x80000000U

struct dk_watch_key {
	__u64 ino; // a watched tree's root directory
	__u32 slot;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct dk_watch_key);
	__type(value, __u8);
} dk_watch SEC(".maps");

// slot -> the kernel dev (s_dev) of its watched tree's file system.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} dk_watch_fs SEC(".maps");

// Per CPU: whether a directory lies in a slot's watched tree, by its dentry and inode number (16 ways), valid in
// one generation (see dk_epoch): the walk up to the root is paid once per directory and frame, not per event.
#define DK_DIR_WAYS 16
#define DK_WATCH_DEPTH 48 /* a deeper directory is taken as inside: recorded, user space filters it */
struct dk_dir_verdict {
	__u64 dentry;
	__u64 ino;
	__u64 epoch;
	__u32 slot;
	__u32 inside;
};

struct dk_dir_verdicts {
	struct dk_dir_verdict way[DK_DIR_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dk_dir_verdicts);
} dk_dir_verdicts SEC(".maps");

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

// The drain generation, kept by user space (ChangeCapture): +1 before and +1 after every drain of dk_dirty (odd
// while a drain runs), +2 on every Track/Untrack. The per-CPU caches below are valid only in the generation they
// were written in: an entry of dk_dirty is removed only by a drain, so an entry this CPU wrote in the current even
// generation is still in the set; and a cached writer's slot is forgotten at the latest one frame after it changed.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dk_epoch SEC(".maps");

// Per CPU: the entries of dk_dirty this CPU's programs last wrote in full, direct-mapped by inode number (64 ways:
// a writer that alternates between a directory and the files it creates or removes keeps both). Only a hint that
// the writer is about to hit the same entry again; coalesced() decides.
#define DK_SEEN_WAYS 64
struct dk_seen_entry {
	__u64 inode;    // the struct inode pointer
	__u64 pid_tgid; // the thread whose event wrote the entry
	__u64 epoch;    // dk_epoch then
	__u64 stamp_ns; // when (the entry's last_ns)
	struct dk_key key;
	__u32 kinds;    // the kinds the entry in dk_dirty holds since (its kinds only grow until it is drained)
	__u32 pad;
};

struct dk_seen {
	struct dk_seen_entry way[DK_SEEN_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dk_seen);
} dk_seen SEC(".maps");

// Per CPU: the last tracked thread this CPU saw and its slot, so that a tracked writer's next event in the same
// generation skips the namespace and cgroup lookups.
struct dk_writer {
	__u64 pid_tgid;
	__u64 task;  // the task_struct pointer: with the thread id, no reuse within a generation is possible
	__u64 epoch;
	__u32 slot;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dk_writer);
} dk_writer SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&dk_counters, &which);
	if (c)
		*c += 1;
}

// The generation of the per-CPU caches now (odd, so no cache is trusted, if user space never set it).
static __always_inline __u64 current_epoch(void)
{
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&dk_epoch, &zero);

	return epoch ? *epoch : 1;
}

// The slot of the current task's mount namespace (else of its cgroup), or NULL when neither is tracked. Every hook
// not coalesced does this first, so a writer outside the tracked containers (the rest of the node) costs one hash
// lookup, and a second one only while some command is recorded (dk_cg_active). A tracked writer's next events in
// the same generation take its slot from dk_writer instead. What that costs: a thread that leaves a tracked
// namespace or cgroup (setns, a cgroup move) is still attributed for at most one frame. Entering one is seen at
// once: an untracked answer is never cached.
static __always_inline __u32 *tracked_slot(__u64 id, __u64 epoch)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u32 zero = 0, *active;
	struct dk_writer *writer = bpf_map_lookup_elem(&dk_writer, &zero);
	__u64 mntns, cgid;
	__u32 *slot;

	if (writer && writer->pid_tgid == id && writer->task == (__u64)task && writer->epoch == epoch)
		return &writer->slot;
	mntns = task->nsproxy->mnt_ns->ns.inum;
	if (!mntns) // an exiting task has no nsproxy any more
		return NULL;
	slot = bpf_map_lookup_elem(&dk_tracked, &mntns);
	if (!slot) {
		// Not a tracked container: a recorded command's cgroup (v2; on a hybrid v1/v2 host the task's cgroup in
		// the unified hierarchy)?
		active = bpf_map_lookup_elem(&dk_cg_active, &zero);
		if (!active || !*active)
			return NULL;
		cgid = bpf_get_current_cgroup_id();
		slot = bpf_map_lookup_elem(&dk_tracked_cg, &cgid);
		if (!slot)
			return NULL;
	}
	if (writer) {
		writer->pid_tgid = id;
		writer->task = (__u64)task;
		writer->epoch = epoch;
		writer->slot = *slot;
	}
	return slot;
}

// Only inodes user space can find in an upper directory are worth a map entry. Measured noise without this
// filter: a pipe per shell command substitution (pipefs sets ctime on every new pipe), file-system metadata blocks
// dirtied in the block device's page cache (bdev), and overlayfs's own inodes (overlay copies the upper inode's
// times into its inode with inode_set_ctime_to_ts; the upper inode raises the same change itself).
static __always_inline bool interesting(struct inode *inode, struct super_block *sb, __u16 mode)
{
	unsigned long flags = sb->s_flags;

	if (flags & (DK_SB_KERNMOUNT | DK_SB_NOUSER))
		return false;
	if (sb->s_magic == DK_OVERLAYFS_SUPER_MAGIC)
		return false;
	switch (mode & DK_S_IFMT) {
	case DK_S_IFREG:
	case DK_S_IFDIR:
	case DK_S_IFLNK:
		return true;
	case DK_S_IFCHR: // an overlay whiteout is a 0:0 character device; real device nodes are not content
		return inode->i_rdev == 0;
	default: // fifos, sockets, block devices
		return false;
	}
}

// This CPU's cache way for an inode, by its number (a multiplicative hash: files created in turn get consecutive
// numbers). Not by the inode pointer: the verifier allows no arithmetic on a kernel pointer it knows the type of.
static __always_inline struct dk_seen_entry *seen_way(struct dk_seen *seen, __u64 ino)
{
	if (!seen)
		return NULL;
	return &seen->way[(ino * 0x9E3779B97F4A7C15ULL) >> 58];
}

static __always_inline struct dk_seen *seen_of_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dk_seen, &zero);
}

// A fresh entry of this writer that lacks this event's kind (a file's first page dirtied right after it was
// created): OR the kind into the entry in place instead of replacing it. Safe against a drain without the bucket
// lock because of the generation: the OR is a full barrier, and the generation is read again after it. Unchanged,
// no drain has begun, so the drain that takes the entry reads it after the OR; changed, a drain may have copied the
// entry before the OR, and the event takes the full path (insert or merge) into the next drain. In the second case
// the OR may have landed in an element the drain freed and the map reused for another inode: that inode's entry
// then carries a spurious kind, which makes user space look at it once more, never less.
static __always_inline bool folded(struct dk_seen_entry *way, __u8 kinds, __u64 epoch)
{
	struct dk_value *old = bpf_map_lookup_elem(&dk_dirty, &way->key);
	__u32 before;

	if (!old)
		return false;
	before = __sync_fetch_and_or(&old->kinds_word, (__u32)kinds); // fetching: fully ordered on every architecture
	if (current_epoch() != epoch)
		return false;
	way->kinds |= (before & 0xff) | kinds;
	return true;
}

// The fast path for a writer's repeated events on one inode (an mmap rewrite dirties a page every few µs, a stream
// of small writes sets ctime every tick, a loop creating files changes their directory every few µs): when this
// CPU's last full update of the inode's entry was by this thread, in this generation (so the entry is still in the
// dirty set: only a drain removes entries, and a drain changes the generation first), with every kind of this
// event, less than DK_COALESCE_NS ago, the event is already in the set: no tracked lookup, no map operation, no
// comm, no replace. Checked BEFORE tracked_slot(): an untracked writer leaves at the first comparisons (its thread
// never wrote a way), and the way proves that the writer was tracked less than DK_COALESCE_NS ago. What it costs
// the recording: last_ns (the version's time) may lag the last event by < DK_COALESCE_NS, and so may the last
// writer's pid/comm when another process on another CPU wrote the same inode in between. A drain that starts after
// the generation was read takes the entry after the event: like a replace landing just before it.
// An outside way (DK_OUTSIDE, see watched_place()) or a born way (DK_BORN, see record()) ends the event the same
// way, uncounted, for the rest of the generation.
static __always_inline bool coalesced(struct dk_seen_entry *way, struct inode *inode, __u64 ino, __u8 kinds, __u64 id,
				      __u64 epoch)
{
	// The same pointer may be another inode by now (freed and reused): the inode number says.
	if (!way || !inode || way->inode != (__u64)inode || way->key.ino != ino || way->pid_tgid != id)
		return false;
	if (way->epoch != epoch || (epoch & 1))
		return false;
	if (way->kinds & (DK_OUTSIDE | DK_BORN)) // not recorded: outside the watched tree, or covered by its directory
		return true;
	if (bpf_ktime_get_boot_ns() - way->stamp_ns >= DK_COALESCE_NS)
		return false;
	if ((way->kinds & kinds) != kinds && !folded(way, kinds, epoch))
		return false;
	count(DK_CNT_EVENTS);
	count(DK_CNT_COALESCED);
	return true;
}

// Remembers that this CPU just wrote the entry of this inode for this thread with these kinds at this time (see
// coalesced()), or, with DK_OUTSIDE, that the inode lies outside the writer's watched tree, or, with DK_BORN, that
// the writer is creating it.
static __always_inline void remember(struct dk_seen_entry *way, struct inode *inode, __u64 id, __u64 epoch,
				     struct dk_key *key, __u8 kinds, __u64 stamp_ns)
{
	if (!way)
		return;
	way->inode = (__u64)inode;
	way->pid_tgid = id;
	way->epoch = epoch;
	way->stamp_ns = stamp_ns;
	way->key = *key;
	way->kinds = kinds;
}

// Folds the event into an existing entry with a replace (see below); false when there is none any more.
static __always_inline bool merge(struct dk_key *key, struct dk_value *val, __u8 kinds)
{
	struct dk_value *old = bpf_map_lookup_elem(&dk_dirty, key);

	if (!old)
		return false;
	val->first_ns = old->first_ns;
	val->kinds = old->kinds | kinds;
	val->merged = old->merged + 1;
	if (bpf_map_update_elem(&dk_dirty, key, val, BPF_EXIST) != 0)
		return false;
	count(DK_CNT_MERGED);
	return true;
}

// Whether the directory lies in the slot's watched tree: it or an ancestor is the tree's root (dk_watch). The walk
// follows d_parent within the file system, so reaching its root means outside; it cannot cross mounts, which is why
// user space gives no tree when a mount lies inside the watched one.
// dir: the directory's dentry; ino: its inode number.
static __always_inline bool dir_inside(struct dentry *dir, __u64 ino, __u32 slot, __u64 epoch)
{
	__u32 zero = 0;
	struct dk_dir_verdicts *cache = bpf_map_lookup_elem(&dk_dir_verdicts, &zero);
	struct dk_watch_key wk = {.slot = slot};
	struct dk_dir_verdict *v = NULL;
	struct dentry *d = dir, *parent;
	bool inside = true; // deeper than DK_WATCH_DEPTH: recorded

	if (cache) {
		v = &cache->way[(ino * 0x9E3779B97F4A7C15ULL) >> 60];
		if (v->dentry == (__u64)dir && v->ino == ino && v->epoch == epoch && v->slot == slot)
			return v->inside;
	}
	wk.ino = ino;
	for (int i = 0; i < DK_WATCH_DEPTH; i++) {
		if (bpf_map_lookup_elem(&dk_watch, &wk)) {
			inside = true;
			break;
		}
		parent = BPF_CORE_READ(d, d_parent);
		if (!parent || parent == d) {
			inside = false;
			break;
		}
		d = parent;
		wk.ino = BPF_CORE_READ(d, d_inode, i_ino);
	}
	if (v) {
		v->dentry = (__u64)dir;
		v->ino = ino;
		v->epoch = epoch;
		v->slot = slot;
		v->inside = inside;
	}
	return inside;
}

// For a recorded command that watches some directories only: where the inode lies. DK_INSIDE: record the event.
// DK_ELSEWHERE: on another file system or not below the watched root — dropped (not counted), and remembered for the
// writer's next events in this generation. DK_NAMELESS: no name any more (its last name being removed: link count 0;
// an unlinked file still written; an O_TMPFILE) — this event is dropped, as the name it loses or gets is a change of
// its directory, which is seen (the daemon's rescans record creations and deletions); not remembered, as the next
// event may come with a name. DK_UNBORN: a link count but no name yet: being created (its first ctime precedes its
// name) — dropped too, see record(). A file with several names is inside (another name may be: user space decides).
// Else its directory's place decides.
#define DK_INSIDE 0
#define DK_ELSEWHERE 1
#define DK_NAMELESS 2
#define DK_UNBORN 3
static __always_inline int watched_place(struct inode *inode, __u16 mode, struct dk_key *key, __u32 slot, __u64 epoch)
{
	__u64 *fs = bpf_map_lookup_elem(&dk_watch_fs, &slot);
	struct hlist_node *first;
	struct dentry *alias, *parent;
	__u32 nlink;

	if (!fs)
		return DK_INSIDE; // its watched tree is being set up or torn down: keep everything
	if (key->dev != *fs)
		return DK_ELSEWHERE;
	nlink = inode->__i_nlink;
	if (nlink == 0) // its last name is going (unlink, rmdir: ctime is set after the link count dropped)
		return DK_NAMELESS;
	first = inode->i_dentry.first;
	if (!first)
		return DK_UNBORN;
	// The dentry holding `first` (container_of): a pointer the verifier cannot type, so read through the helper.
	alias = (struct dentry *)((__u64)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
	if ((mode & DK_S_IFMT) == DK_S_IFDIR)
		return dir_inside(alias, key->ino, slot, epoch) ? DK_INSIDE : DK_ELSEWHERE;
	if (nlink > 1)
		return DK_INSIDE;
	parent = BPF_CORE_READ(alias, d_parent);
	return dir_inside(parent, BPF_CORE_READ(parent, d_inode, i_ino), slot, epoch) ? DK_INSIDE : DK_ELSEWHERE;
}

// Inserts the event as a new entry: 0, or the error (-EEXIST: there is one; -E2BIG: the set is full).
static __always_inline long insert(struct dk_key *key, struct dk_value *val, __u8 kinds)
{
	val->first_ns = val->last_ns;
	val->kinds = kinds;
	val->merged = 0;
	return bpf_map_update_elem(&dk_dirty, key, val, BPF_NOEXIST);
}

static __always_inline void record(struct dk_seen *seen, struct inode *inode, __u8 kinds, __u32 slot, __u64 id,
				   __u64 epoch)
{
	struct dk_key key = {};
	struct dk_value val = {};
	struct dk_seen_entry *way;
	struct super_block *sb;
	bool known;
	__u16 mode;
	long err;
	int place;

	if (!inode)
		return;
	mode = inode->i_mode;
	sb = inode->i_sb;
	if (!interesting(inode, sb, mode))
		return;
	if ((mode & DK_S_IFMT) == DK_S_IFDIR)
		kinds |= DK_DIR;
	key.dev = sb->s_dev;
	key.ino = inode->i_ino;
	way = seen_way(seen, key.ino);
	if (slot & DK_SLOT_WATCHED) {
		slot &= ~DK_SLOT_WATCHED;
		place = watched_place(inode, mode, &key, slot, epoch);
		if (place == DK_NAMELESS)
			return;
		// A regular file being created (a link count, no name yet: its first ctime precedes its name): whatever
		// its writer does to it for the rest of this generation (the write that follows an open(O_CREAT), its
		// mtime) needs no entry of its own. The name it gets is a change of its directory, and the daemon's rescan
		// for that change reads the new file after the drain that ends this generation, so with everything written
		// to it before. A write in a later generation, or by another thread, takes the full path again. Saves the
		// file's insert into the dirty set. Only with a watched tree (`record`): for containers, a new file keeps
		// an entry of its own, with its own writer and time.
		if (place == DK_UNBORN) {
			if ((mode & DK_S_IFMT) == DK_S_IFREG)
				remember(way, inode, id, epoch, &key, DK_BORN, 0);
			return;
		}
		if (place == DK_ELSEWHERE) {
			// Remembered like a written entry, so the writer's next events on it stop in coalesced().
			remember(way, inode, id, epoch, &key, DK_OUTSIDE, 0);
			return;
		}
	}

	count(DK_CNT_EVENTS);

	val.last_ns = bpf_ktime_get_boot_ns();
	val.slot = slot;
	val.pid = id >> 32;
	bpf_get_current_comm(val.comm, sizeof(val.comm));

	// Read-modify-replace instead of writing through the looked-up pointer: a replace happens under the
	// bucket lock, so it never lands in an element user space is draining (lookup_and_delete_batch) or one the
	// map has already recycled for another key. If the entry was drained meanwhile, the replace fails and a fresh
	// entry is inserted: the event still reaches user space, in the next drain.
	// Which to try first: when this CPU wrote the inode's entry in this generation it is probably still there
	// (merge); otherwise it is probably new (an inode's first event in a frame: insert, one hash walk fewer).
	known = way && way->inode == (__u64)inode && way->epoch == epoch && way->key.ino == key.ino &&
		!(way->kinds & (DK_OUTSIDE | DK_BORN));
	if (known && merge(&key, &val, kinds))
		goto done;
	err = insert(&key, &val, kinds);
	if (err == 0)
		goto done;
	// EEXIST: the entry is there (another CPU's, or one this CPU's cache forgot): fold into it; if a drain took it
	// between the insert and the merge, insert again.
	if (err == -17 && (merge(&key, &val, kinds) || insert(&key, &val, kinds) == 0))
		goto done;
	// E2BIG: the dirty set is full (user space fell behind). Never silent.
	count(DK_CNT_LOST);
	return;
done:
	remember(way, inode, id, epoch, &key, val.kinds, val.last_ns);
}

static __always_inline int on_ctime(struct inode *inode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 epoch = current_epoch();
	struct dk_seen *seen = seen_of_cpu();
	__u64 ino = inode ? inode->i_ino : 0;
	__u32 *slot;

	if (coalesced(seen_way(seen, ino), inode, ino, DK_META, id, epoch))
		return 0;
	slot = tracked_slot(id, epoch);
	if (slot)
		record(seen, inode, DK_META, *slot, id, epoch);
	return 0;
}

// writeback_dirty_folio(struct folio *folio, struct address_space *mapping): a data page became dirty.
// mapping->host owns the page cache: on overlayfs that is the UPPER file system's inode (overlay has no page
// cache of its own), i.e. the file user space will read from the upper directory. (A NULL mapping: the folio's.)
SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(dk_dirty_folio, struct folio *folio, struct address_space *mapping)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 epoch = current_epoch();
	struct dk_seen *seen = seen_of_cpu();
	struct inode *host;
	__u64 ino;
	__u32 *slot;

	if (!mapping)
		mapping = folio->mapping;
	if (!mapping)
		return 0;
	host = mapping->host;
	if (!host)
		return 0;
	ino = host->i_ino;
	if (coalesced(seen_way(seen, ino), host, ino, DK_DATA, id, epoch))
		return 0;
	slot = tracked_slot(id, epoch);
	if (slot)
		record(seen, host, DK_DATA, *slot, id, epoch);
	return 0;
}

// ctime_ns_xchg(struct inode *inode, u32 old, u32 new, u32 cur): a multigrain file system set a new ctime.
SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(dk_ctime_xchg, struct inode *inode)
{
	return on_ctime(inode);
}

// ctime_xchg_skip(struct inode *inode, struct timespec64 *ctime): a change whose ctime equals the current one
// (same tick, nobody looked at the time since): a change nonetheless.
SEC("tp_btf/ctime_xchg_skip")
int BPF_PROG(dk_ctime_skip, struct inode *inode)
{
	return on_ctime(inode);
}

// inode_set_ctime_to_ts(struct inode *inode, struct timespec64 *ts): ctime set on a file system without
// multigrain timestamps (and by a few explicit setters).
SEC("tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(dk_ctime_set, struct inode *inode)
{
	return on_ctime(inode);
}

// Fallback for kernels without the timestamp tracepoints (< 6.13), attached by user space only then:
// writeback_mark_inode_dirty(struct inode *inode, int flags). I_DIRTY_PAGES alone echoes a page becoming dirty
// (already DATA); the other flags mean timestamps/attributes. Misses what ext4 journals itself (see the top).
SEC("tp_btf/writeback_mark_inode_dirty")
int BPF_PROG(dk_fallback_mark_inode_dirty, struct inode *inode, int flags_arg)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 epoch = current_epoch();
	__u32 *slot = tracked_slot(id, epoch);
	__u32 flags, meta;

	if (!slot)
		return 0;
	flags = (__u32)flags_arg;
	// The I_DIRTY_* values moved in 6.18 (enum inode_state_flags_t): take them from the running kernel's BTF,
	// falling back to the long-standing #define values on kernels without that enum.
	if (bpf_core_enum_value_exists(enum inode_state_flags_t, I_DIRTY_SYNC))
		meta = bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_SYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_DATASYNC) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_DIRTY_TIME);
	else
		meta = (1 << 0) | (1 << 1) | (1 << 11);
	if (flags & meta)
		record(seen_of_cpu(), inode, DK_META, *slot, id, epoch);
	return 0;
}
