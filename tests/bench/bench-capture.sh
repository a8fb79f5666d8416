#!/usr/bin/env bash
# Change-capture overhead on the write path, measured the way docs/bpf.md's kernel facts were: a loop of
# pwrite(64 B) + write(0 B) pairs, CPU ns per pair (the process's user + system time, so that other load on the
# machine does not count), with
#   baseline   no BPF program loaded
#   untracked  diffkeeper.bpf.o attached, the loop's mount namespace NOT tracked (every other process on a node)
#   tracked    attached and the loop's namespace tracked (a recorded container's own write path)
# and the same for the worst case, pwrite + fstat pairs (on a multigrain fs each write then sets a fresh ctime,
# so every write is an event). Modes alternate, BENCH_ROUNDS rounds (default 5); medians and ratios printed.
# Then one run per mode with the kernel's BPF statistics on: ns per program run, independent of the machine's load.
# Each run is in its own mount namespace (unshare -m), so tracking it tracks nothing else on the machine.
# Usage: tests/bench/bench-capture.sh [OBJECT] (default: $DIFFKEEPER_BIN_DIR or artifacts/bin /diffkeeper.bpf.o)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
OBJ=${1:-${DIFFKEEPER_BIN_DIR:-$repo/artifacts/bin}/diffkeeper.bpf.o}
ROUNDS=${BENCH_ROUNDS:-5}
PAIRS=${BENCH_PAIRS:-1000000}

die() { echo "bench-capture: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (loads eBPF)"
[ -f "$OBJ" ] || die "$OBJ missing (run 'make build')"
command -v cc >/dev/null || die "a C compiler (cc) is needed"
tmp=$(mktemp -d /var/tmp/dk-bench-capture.XXXXXX) # a disk file system: tmpfs has no writeback
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -o "$tmp/bench" "$here/capture/bench-capture.c" -lbpf || die "cannot build the benchmark (libbpf-dev?)"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "bench-capture: $PAIRS pairs per run, $ROUNDS rounds, object $OBJ, kernel $(uname -r)"
for loop in write0 fstat; do
  declare -A runs=()
  for ((r = 1; r <= ROUNDS; r++)); do
    for mode in baseline untracked tracked; do
      out=$(unshare -m --propagation private "$tmp/bench" "$OBJ" "$mode" "$loop" "$PAIRS" "$tmp/file")
      runs[$mode]+="${out%% *}"$'\n'
      [ "$mode" = tracked ] && events="$out"
    done
  done
  base=$(printf '%s' "${runs[baseline]}" | median)
  untr=$(printf '%s' "${runs[untracked]}" | median)
  trk=$(printf '%s' "${runs[tracked]}" | median)
  read -r _ ev mg lost <<<"$events"
  what="pwrite(64 B) + write(0 B)"; [ "$loop" = fstat ] && what="pwrite(64 B) + fstat (worst case)"
  printf '%-36s baseline %7.1f ns/pair | untracked %7.1f (x%.3f) | tracked %7.1f (x%.3f) | last tracked run: %s events, %s merged, %s lost\n' \
    "$what" "$base" "$untr" "$(awk -v a="$untr" -v b="$base" 'BEGIN{print a/b}')" \
    "$trk" "$(awk -v a="$trk" -v b="$base" 'BEGIN{print a/b}')" "$ev" "$mg" "$lost"
  # the cost of one program run, from the kernel's BPF statistics (immune to the machine's load)
  for mode in untracked tracked; do
    read -r _ _ _ _ pruns pns <<<"$(unshare -m --propagation private "$tmp/bench" "$OBJ" "$mode" "$loop" "$PAIRS" "$tmp/file" stats)"
    printf '%-36s   %s: %s program runs, %s ns per run (bpf_stats)\n' "" "$mode" "$pruns" "$pns"
  done
  unset runs
done
