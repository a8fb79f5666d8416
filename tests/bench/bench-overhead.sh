#!/usr/bin/env bash
# Recorder overhead benchmark (issue "the flight recorder"): what recording costs the container, measured inside
# the container, io.containerd.diffkeeper.v1 (with diffkeeperd recording) against io.containerd.runc.v2, alternating
# in the same run on a private containerd.
#
#   (a) writes  1.2 M write(2)s of 64 B, then fdatasync        (c) files  3,000 small files created, then removed
#   (b) bulk    1 GiB in 1 MiB writes, then fdatasync          (d) mmap   a 64 MiB shared mapping rewritten page by page
#   (e) churn   20 files rewritten in turn for BENCH_CHURN_SECS (default 30) s — throughput, more is better
#
# Each workload is tests/bench/overhead/dkwork.c (static, copied into the busybox image), which times itself with
# CLOCK_MONOTONIC. Prints medians per runtime and the diffkeeper/runc crossover ratio (target <= 1.05, see below), the
# daemon's CPU time and peak RSS, its ingest lag and lost events (from /metrics), and checks that (c) and (e) lost no
# change at the recording's frame resolution. Then runs bench-shim with the daemon running (targets: latency <= 1.10,
# RSS <= 0.8).
#
# The ratio is an AB/BA crossover estimate. Each round is a pair of runs, one per runtime; odd rounds run runc first
# (AB), even rounds diffkeeper first (BA). The first run of a pair pays a position effect whichever runtime it is
# ((b): +250-400 ms of CPU first, likely reclaiming the page cache the pair before left), so a median per runtime over
# all rounds mixes positions. Instead, per order, the median of the per-pair ratios (diffkeeper/runc of the same
# round); the reported ratio is the geometric mean of the two order medians: a position effect multiplies one order's
# ratios by p and the other's by 1/p and cancels. BENCH_ROUNDS must be even (as many AB as BA pairs). The medians per
# runtime and the two order ratios are printed too; MET/MISSED is decided on the crossover ratio. The same for the
# workloads' CPU ratios (not a target) and in record mode (plain = A, record = B). (e) churn is throughput: its ratio
# is runc's changes / diffkeeper's in the same time (CPU: per change), so > 1 is slower under us there too.
#
# BENCH_MODE=record (`make bench-overhead-record`): the same workloads as plain commands on the host, run by
# `diffkeeper record --dir RUN_DIR -- dkwork WL RUN_DIR` against `dkwork WL RUN_DIR` alone, alternating in the same
# run (no containerd, no bench-shim). BENCH_RECORD_WATCH=elsewhere watches an empty directory instead of the one the
# workload writes: what recording costs the command's writes outside the watched tree.
#
# Every round, of either runtime, starts on the same quiet footing: the daemon has no exit state left to ingest
# (its spool is empty and /metrics shows no backlog) and the disk has nothing left to write back (sync). Without
# that, the exit ingest of one round ran during the next round of the other runtime (a 1 GiB exit state slowed the
# runc round after it: (b) looked 0.64x, and (c) after (b) 1.22x).
#
# Then, in container mode, a separate "concurrent" figure (BENCH_CONCURRENT_ROUNDS, default 5; 0 = off): (c) started
# right after a (b) container of the same runtime exits, without waiting — under diffkeeper the daemon ingests that
# 1 GiB exit state while (c) runs (paced, see ingest.paced_rate), under runc only the host's own cleanup of it
# happens. Not a target: it shows what the exit ingest costs a container running beside it.
#
# Timeline paths are relative to the container's root ("tmp/f0001"), or to the watched directory in record mode. BENCH_DAEMON_CONFIG adds lines to the daemon's
# config.toml. BENCH_ROUNDS (default 6; (c) varied 0.91–1.27 per round on 2 cores) rounds — must be even (the crossover estimate
# above; with an odd count a plain median favoured the runtime that went second more often: 5 rounds gave (b) 0.42x);
# BENCH_WORKLOADS (default "writes bulk files mmap churn"); BENCH_SKIP_SHIM=1 skips
# the shim part; BENCH_ENFORCE=1 makes a missed target exit 1.
# Usage: sudo DIFFKEEPER_BIN_DIR=artifacts/bin tests/bench/bench-overhead.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/scripts/lib/private-containerd.sh"

MODE=${BENCH_MODE:-container}
[ "$MODE" = container ] || [ "$MODE" = record ] || { echo "bench-overhead: BENCH_MODE is container or record" >&2; exit 2; }
RECORD_WATCH=${BENCH_RECORD_WATCH:-run}
ROUNDS=${BENCH_ROUNDS:-6}
[ $((ROUNDS % 2)) = 0 ] && [ "$ROUNDS" -gt 0 ] ||
  { echo "bench-overhead: BENCH_ROUNDS=$ROUNDS must be even and > 0: the crossover estimate needs as many rounds with each runtime first" >&2; exit 2; }
CONCURRENT_ROUNDS=${BENCH_CONCURRENT_ROUNDS:-5}
WORKLOADS=${BENCH_WORKLOADS:-writes bulk files mmap churn}
CHURN_SECS=${BENCH_CHURN_SECS:-30}
BIN_DIR=$(cd "${DIFFKEEPER_BIN_DIR:-$repo/artifacts/bin}" && pwd)
RUNC_RT=io.containerd.runc.v2
DK_RT=io.containerd.diffkeeper.v1

die() { echo "bench-overhead: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (containerd, runc, eBPF)"
if [ "$MODE" = record ]; then
  A_RT=plain; B_RT=record; TOOLS="gcc python3"; BINS="diffkeeperd diffkeeper"; PREFIX=""
else
  A_RT=$RUNC_RT; B_RT=$DK_RT; TOOLS="containerd ctr runc containerd-shim-runc-v2 gcc python3"
  BINS="containerd-shim-diffkeeper-v1 diffkeeperd diffkeeper"; PREFIX="tmp/"
fi
for tool in $TOOLS; do command -v "$tool" >/dev/null || die "$tool not installed"; done
for b in $BINS; do [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b missing (run 'make build')"; done

# On the root file system (/var/tmp), not a tmpfs: tmpfs has no writeback accounting (docs/bpf.md).
WORK=$(mktemp -d /var/tmp/dk-overhead-XXXX)
WORK_IMAGE=""
DAEMON_PID=""
cleanup() {
  set +e
  dk_containerd_stop
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill "$DAEMON_PID"; for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DAEMON_PID" 2>/dev/null
  fi
  if [ -n "$WORK_IMAGE" ]; then
    umount "$WORK" 2>/dev/null || umount -l "$WORK"; rm -f "$WORK_IMAGE"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# BENCH_FS=journal: everything (the store, containerd's root with the containers' upper dirs, record's run dirs) on
# a fresh ext4 WITH a journal, loop-mounted on WORK. This machine's root ext4 has none, and without a journal ext4's
# inode allocator skips every inode freed in the last 60-360 s (recently_deleted() in fs/ext4/ialloc.c): after a
# few 3,000-file rounds, creating a file costs ~0.5 ms of system time for both sides, which drowns (c). A journaled
# ext4 (or xfs) is what a containerd host usually has. Default: the machine's own file system (`make
# bench-overhead-record` passes journal since session 9; docs/record.md).
if [ "${BENCH_FS:-}" = journal ]; then
  WORK_IMAGE=$(mktemp /var/tmp/dk-overhead-fs-XXXX.img)
  truncate -s "${BENCH_FS_SIZE:-8G}" "$WORK_IMAGE"
  mkfs.ext4 -q -F -j "$WORK_IMAGE"
  mount -o loop "$WORK_IMAGE" "$WORK"
fi

gcc -static -O2 -Wall -o "$WORK/dkwork" "$here/overhead/dkwork.c"

# The daemon first: the shims find it through DIFFKEEPER_SOCKET, inherited from containerd's environment.
export DIFFKEEPER_SOCKET=$WORK/diffkeeperd.sock DIFFKEEPER_STORE=$WORK/store
METRICS_PORT=${BENCH_METRICS_PORT:-19464}
cat >"$WORK/config.toml" <<TOML
metrics_address = "127.0.0.1:$METRICS_PORT"
${BENCH_DAEMON_CONFIG:-}
TOML
setsid ${BENCH_DAEMON_WRAPPER:-} "$BIN_DIR/diffkeeperd" --config "$WORK/config.toml" --store "$DIFFKEEPER_STORE" --socket "$DIFFKEEPER_SOCKET" \
  >"$WORK/diffkeeperd.log" 2>&1 </dev/null &
DAEMON_PID=$!
for _ in $(seq 1 100); do [ -S "$DIFFKEEPER_SOCKET" ] && break; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
[ -S "$DIFFKEEPER_SOCKET" ] || { tail -20 "$WORK/diffkeeperd.log" >&2; die "diffkeeperd did not come up"; }

if [ "$MODE" = container ]; then
  DIFFKEEPER_BIN_DIR=$BIN_DIR dk_containerd_start "$WORK/ctrd"
  DK_IMAGE_EXTRA_BIN="$WORK/dkwork" dk_busybox_image
  C=(ctr -a "$DK_SOCK" -n "$DK_NS")
fi
mkdir -p "$WORK/runs" "$WORK/elsewhere"

# One timed run of workload $1 on "runtime" $2 (a containerd runtime, or plain / record), named $3: prints dkwork's line.
run_one() {
  local wl=$1 rt=$2 id=$3 dir args
  case "$rt" in
    plain|record)
      dir=$WORK/runs/$id; mkdir -p "$dir"
      args=("$WORK/dkwork" "$wl" "$dir"); [ "$wl" = churn ] && args+=("$CHURN_SECS")
      if [ "$rt" = plain ]; then "${args[@]}"
      else
        local watch=$dir; [ "$RECORD_WATCH" = elsewhere ] && watch=$WORK/elsewhere
        "$BIN_DIR/diffkeeper" record -q --dir "$watch" --name "$id" --keep always -- "${args[@]}"
      fi
      local rc=$?
      rm -rf "$dir"
      return $rc ;;
    *)
      args=(/bin/dkwork "$wl" /tmp); [ "$wl" = churn ] && args+=("$CHURN_SECS")
      timeout 600 "${C[@]}" run --rm --runtime "$rt" "$DK_IMAGE" "$id" "${args[@]}" ;;
  esac
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
metric() { # metric NAME -> the sum of its samples on /metrics (0 when absent)
  python3 - "$METRICS_PORT" "$1" <<'PY'
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
try:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
except Exception:
    print("nan"); sys.exit(0)
total, seen = 0.0, False
for line in text.splitlines():
    if line.startswith(name + " ") or line.startswith(name + "{"):
        total += float(line.rsplit(" ", 1)[1]); seen = True
print(total if seen else "nan")
PY
}

SPOOL=$DIFFKEEPER_STORE/spool
# Waits until no exit state is waiting or being ingested (spool entries are removed once ingested; the backlog
# counts the entry in progress), then writes back what is dirty: the next round starts on a quiet disk.
quiesce() {
  local i
  for i in $(seq 1 1200); do
    if [ -z "$(find "$SPOOL" -mindepth 2 -maxdepth 2 ! -name '*.bad' -print -quit 2>/dev/null)" ] &&
       [ "$(metric diffkeeper_spool_backlog)" = 0.0 ]; then
      sync; return 0
    fi
    sleep 0.25
  done
  echo "bench-overhead: the daemon still ingests after 5 minutes; measuring anyway" >&2
  sync
}

cpu0=$(cpu_ticks)
: >"$WORK/results"
n=0
for round in $(seq 1 "$ROUNDS"); do
  for wl in $WORKLOADS; do
    # Alternate which runtime goes first, so neither always runs on a cache the other warmed.
    if [ $((round % 2)) = 1 ]; then order="$A_RT $B_RT"; else order="$B_RT $A_RT"; fi
    for rt in $order; do
      n=$((n + 1)); id="ov-$wl-$n"
      # The previous run's dirty pages must not be written back during this one (the 1 GiB run left ~1 GiB behind
      # for whoever ran next: the run after it looked 4x faster or slower depending on the order), and its exit state
      # must not be ingested during it.
      quiesce
      out=$(run_one "$wl" "$rt" "$id") || die "run of $wl on $rt failed: $out"
      read -r name ns ops cpu <<<"$out"
      echo "$wl $rt $ns $ops $id ${cpu:-nan} $round" >>"$WORK/results"
      awk -v r="$round" -v w="$wl" -v rt="$rt" -v ns="$ns" -v o="$ops" -v c="${cpu:-0}" 'BEGIN { printf "  round %s %-6s %-28s %8.1f ms  %s ops  cpu %8.1f ms\n", r, w, rt, ns / 1e6, o, c / 1e6 }'
    done
  done
done
quiesce
cpu1=$(cpu_ticks)
hz=$(getconf CLK_TCK)

# The concurrent figure (see the header): (c) while the previous container's 1 GiB exit state is being ingested.
: >"$WORK/concurrent"
if [ "$MODE" = container ] && [ "$CONCURRENT_ROUNDS" -gt 0 ]; then
  paced0=$(metric diffkeeper_spool_paced_nanoseconds_total)
  for round in $(seq 1 "$CONCURRENT_ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="$A_RT $B_RT"; else order="$B_RT $A_RT"; fi
    for rt in $order; do
      n=$((n + 1))
      quiesce
      run_one bulk "$rt" "cc-bulk-$n" >/dev/null || die "concurrent: bulk run on $rt failed"
      out=$(run_one files "$rt" "cc-files-$n") || die "concurrent: files run on $rt failed: $out"
      read -r name ns ops cpu <<<"$out"
      echo "files $rt $ns $ops cc-files-$n ${cpu:-nan}" >>"$WORK/concurrent"
      awk -v r="$round" -v rt="$rt" -v ns="$ns" -v c="${cpu:-0}" 'BEGIN { printf "  concurrent round %s files-after-bulk %-28s %8.1f ms  cpu %8.1f ms\n", r, rt, ns / 1e6, c / 1e6 }'
    done
  done
  quiesce
  paced1=$(metric diffkeeper_spool_paced_nanoseconds_total)
fi

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
missed=0
echo
if [ "$MODE" = record ]; then
  echo "command time, $ROUNDS rounds (diffkeeper record / plain; watched: $RECORD_WATCH; load $(cut -d' ' -f1-3 /proc/loadavg); target <= 1.05 on the crossover ratio)"
else
  echo "in-container time, $ROUNDS rounds (diffkeeper / runc; load $(cut -d' ' -f1-3 /proc/loadavg); target <= 1.05 on the crossover ratio)"
fi
# The crossover estimate (see the header), for the time (the target) and the workload's own CPU time (user + system,
# eBPF programs included; not a target).
python3 - "$WORK/results" "$A_RT" "$B_RT" "$WORKLOADS" <<'PY' || missed=1
import math, statistics, sys
path, A, B, wls = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
rows = [l.split() for l in open(path) if l.strip()]
an, bn = A.rsplit(".", 1)[-1], B.rsplit(".", 1)[-1]

def crossover(wl, value):
    """value(row) -> lower is better. Returns per-runtime medians, per-order median ratios (B/A) and their geometric mean."""
    rounds = {}
    for r in rows:
        if r[0] == wl: rounds.setdefault(int(r[6]), {})[r[1]] = value(r)
    by_order = {"AB": [], "BA": []}
    for rnd, d in rounds.items():
        if A in d and B in d: by_order["AB" if rnd % 2 == 1 else "BA"].append(d[B] / d[A])
    med_a = statistics.median(d[A] for d in rounds.values() if A in d)
    med_b = statistics.median(d[B] for d in rounds.values() if B in d)
    ab, ba = statistics.median(by_order["AB"]), statistics.median(by_order["BA"])
    return med_a, med_b, ab, ba, math.sqrt(ab * ba), len(by_order["AB"]), len(by_order["BA"])

missed = False
for wl in wls:
    if wl == "churn":  # throughput: time per change, so the ratio is A's changes / B's changes
        a, b, ab, ba, x, nab, nba = crossover(wl, lambda r: 1 / float(r[3]))
        meds = f"{an} {1 / a:12.0f} changes  {bn} {1 / b:12.0f} changes"
    else:
        a, b, ab, ba, x, nab, nba = crossover(wl, lambda r: float(r[2]))
        meds = f"{an} {a / 1e6:9.1f} ms  {bn} {b / 1e6:9.1f} ms"
    ok = x <= 1.05
    missed |= not ok
    print(f"  {wl:<6} medians {meds}  per order: {an} first {ab:.3f} (n={nab}), {bn} first {ba:.3f} (n={nba})  "
          f"crossover ratio {x:.3f}  {'MET' if ok else 'MISSED'}")
print("the workload's own CPU time (user + system, eBPF programs included; robust to the machine's load), same estimate:")
for wl in wls:
    per = (lambda r: float(r[5]) / float(r[3])) if wl == "churn" else (lambda r: float(r[5]))
    a, b, ab, ba, x, nab, nba = crossover(wl, per)
    print(f"  {wl:<6} medians {an} {a / 1e6:10.3f} ms  {bn} {b / 1e6:10.3f} ms  per order: {an} first {ab:.3f}, {bn} first {ba:.3f}  "
          f"crossover ratio {x:.3f}{'  (per change)' if wl == 'churn' else ''}")
sys.exit(1 if missed else 0)
PY

if [ -s "$WORK/concurrent" ]; then
  rc=$(awk -v r="$A_RT" '$2 == r { print $3 }' "$WORK/concurrent" | median)
  dk=$(awk -v r="$B_RT" '$2 == r { print $3 }' "$WORK/concurrent" | median)
  rcc=$(awk -v r="$A_RT" '$2 == r { print $6 }' "$WORK/concurrent" | median)
  dkc=$(awk -v r="$B_RT" '$2 == r { print $6 }' "$WORK/concurrent" | median)
  echo "concurrent (not a target): (c) started as the previous (b) container of its runtime exits, medians of $CONCURRENT_ROUNDS rounds;"
  echo "  under diffkeeper the daemon ingests that 1 GiB exit state meanwhile (held back $(awk -v a="$paced0" -v b="$paced1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s in all by pacing)"
  awk -v a="$rc" -v b="$dk" -v ac="$rcc" -v bc="$dkc" -v an="${A_RT##*.}" -v bn="${B_RT##*.}" \
    'BEGIN { printf "  files  %s %9.1f ms  %s %9.1f ms  ratio %.3f   cpu %.1f / %.1f ms  ratio %.3f\n", an, a / 1e6, bn, b / 1e6, b / a, ac / 1e6, bc / 1e6, bc / ac }'
fi

echo
echo "daemon: CPU $(awk -v a="$cpu0" -v b="$cpu1" -v h="$hz" 'BEGIN { printf "%.2f", (b - a) / h }') s over the run," \
  "peak RSS $(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$DAEMON_PID/status")," \
  "events lost $(metric diffkeeper_kernel_events_lost_total), merged $(metric diffkeeper_kernel_events_merged_total)," \
  "ingest lag (longest frame) $(metric diffkeeper_ingest_lag_max_seconds) s, spool backlog $(metric diffkeeper_spool_backlog)"

# No change lost at frame resolution: (c) every one of the 3,000 files is in the recording and all are gone at the
# end; (e) every churn file's last value is the recorded end state, with about one version per frame.
DK=("$BIN_DIR/diffkeeper" --store "$DIFFKEEPER_STORE")
[ "$MODE" = record ] && [ "$RECORD_WATCH" = elsewhere ] && CHECKS="" || CHECKS="files churn"
for wl in $CHECKS; do
  case " $WORKLOADS " in *" $wl "*) ;; *) continue ;; esac
  id=$(awk -v w="$wl" -v r="$B_RT" '$1 == w && $2 == r { print $5 }' "$WORK/results" | tail -1)
  ops=$(awk -v w="$wl" -v r="$B_RT" '$1 == w && $2 == r { print $4 }' "$WORK/results" | tail -1)
  "${DK[@]}" timeline "$id" --json >"$WORK/tl.json" || die "timeline of $id failed"
  python3 - "$wl" "$WORK/tl.json" "$ops" "$CHURN_SECS" "$PREFIX" "${DK[@]}" "$id" <<'PY' || missed=1
import json, subprocess, sys
wl, path, ops, secs, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
dk, rec = sys.argv[6:-1], sys.argv[-1]
rows = [json.loads(l) for l in open(path) if l.strip()]
if wl == "files":
    made = {r["path"] for r in rows if (r.get("path") or "").startswith(prefix + "f") and r["kind"] in ("version", "create")}
    gone = {r["path"] for r in rows if (r.get("path") or "").startswith(prefix + "f") and r["kind"] in ("delete", "whiteout")}
    ok = len(made) == 3000 and len(gone) == 3000
    print(f"  (c) files seen {len(made)}/3000, deletions seen {len(gone)}/3000: {'MET' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)
last = ops - 1  # the loop writes 20 files per cycle; file f's last value is ops - 20 + f
versions, raced = {}, {}
for r in rows:
    if (r.get("path") or "").startswith(prefix + "churn") and r["kind"] == "gap":
        raced[r["path"]] = raced.get(r["path"], 0) + 1
    if (r.get("path") or "").startswith(prefix + "churn") and r["kind"] == "version":
        versions["/" + r["path"]] = versions.get("/" + r["path"], 0) + 1
bad = []
for f in range(20):
    p = f"/{prefix}churn{f:02d}.txt"
    got = subprocess.run(dk + ["show", rec, p, "--at", "end"], capture_output=True).stdout.decode().strip()
    if got != f"{ops - 20 + f:020d}":
        bad.append(f"{p}: end state {got!r}, expected {ops - 20 + f:020d}")
frame_s = 0.1
need = int(secs / frame_s * 0.8)
thin = {p: n for p, n in versions.items() if n < need}
print(f"  (e) versions per file min {min(versions.values(), default=0)}, max {max(versions.values(), default=0)} "
      f"(>= {need} needed at a {frame_s*1000:.0f} ms frame); end states {'right' if not bad else 'WRONG'}: "
      f"{'MET' if not bad and not thin and len(versions) == 20 else 'MISSED'}")
print(f"  (e) gap events (e.g. a read that raced the writer three times) per file: min {min((raced.get(p[1:], 0) for p in versions), default=0)}, "
      f"max {max((raced.get(p[1:], 0) for p in versions), default=0)}, total {sum(raced.values())}")
for b in bad[:5]: print("    " + b)
sys.exit(0 if not bad and not thin and len(versions) == 20 else 1)
PY
done

[ "$MODE" = container ] && dk_containerd_stop
if [ "${BENCH_SKIP_SHIM:-0}" != 1 ] && [ "$MODE" = container ]; then
  echo
  echo "bench-shim with the daemon running (DIFFKEEPER_SOCKET=$DIFFKEEPER_SOCKET):"
  BENCH_ENFORCE=1 BENCH_RSS_TARGET=0.8 DIFFKEEPER_BIN_DIR=$BIN_DIR "$here/bench-shim.sh" || missed=1
fi

if [ "$missed" = 1 ]; then
  echo "bench-overhead: some targets missed"
  [ "${BENCH_ENFORCE:-0}" = 1 ] && exit 1
fi
exit 0
