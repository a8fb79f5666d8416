#!/usr/bin/env bash
# Shim benchmark: containerd-shim-diffkeeper-v1 against the stock containerd-shim-runc-v2, in the same run, on a
# private containerd (own root/state/sockets under a temp dir; the system containerd is never touched).
#
#   latency  `ctr run --rm --runtime R IMG id true`, BENCH_RUNS (>= 30) runs per runtime, alternating runtimes
#   RSS      steady-state VmRSS of the shim serving `sleep 1000`, read 1 s after start, BENCH_RSS_SAMPLES per runtime
#
# Prints medians and diffkeeper/runc ratios against the targets (latency <= 1.10, RSS <= BENCH_RSS_TARGET, default 0.8).
# BENCH_ENFORCE=1 makes a missed target exit 1. Usage: DIFFKEEPER_BIN_DIR=artifacts/bin tests/bench/bench-shim.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/scripts/lib/private-containerd.sh"

RUNS=${BENCH_RUNS:-30}
RSS_SAMPLES=${BENCH_RSS_SAMPLES:-5}
# The recorder issue tightened the RSS target from 1.5 to 0.8 of the stock shim (the shim is one process per container).
RSS_TARGET=${BENCH_RSS_TARGET:-0.8}
BIN_DIR=${DIFFKEEPER_BIN_DIR:-$repo/artifacts/bin}
RUNC_RT=io.containerd.runc.v2
DK_RT=io.containerd.diffkeeper.v1
DK_SHIM=$BIN_DIR/containerd-shim-diffkeeper-v1

die() { echo "bench-shim: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (containerd, runc, mounts)"
for tool in containerd ctr runc containerd-shim-runc-v2; do command -v "$tool" >/dev/null || die "$tool not installed"; done
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
[ -x "$DK_SHIM" ] || die "the DiffKeeper shim binary is missing: $DK_SHIM (run 'make build' or set DIFFKEEPER_BIN_DIR)"
[ "$RUNS" -ge 30 ] || die "BENCH_RUNS must be >= 30"

# An interrupt ends the script (the EXIT trap then cleans up once); a bare INT trap would resume the loop.
trap dk_containerd_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

instance=$(mktemp -d /tmp/dk-bench-XXXX)
# Without a daemon (no DIFFKEEPER_STORE from bench-overhead) the shim spools every exit state for a daemon to come:
# into the instance directory, which goes with it, never into the node's /var/lib/diffkeeper.
[ -n "${DIFFKEEPER_STORE:-}" ] || export DIFFKEEPER_STORE=$instance/store
DIFFKEEPER_BIN_DIR=$BIN_DIR dk_containerd_start "$instance"
ROOT=$DK_DIR   # scratch files live in the instance directory and go with it
TOKEN=$(basename "$ROOT" | cut -d- -f3)
dk_busybox_image
C=(ctr -a "$DK_SOCK" -n "$DK_NS")

short() { [ "$1" = "$RUNC_RT" ] && echo rc || echo dk; }

# run_once RUNTIME ID -> prints elapsed milliseconds (fractional)
run_once() {
  local t0 t1 rc=0
  t0=$(date +%s%N)
  timeout 60 "${C[@]}" run --rm --runtime "$1" "$DK_IMAGE" "$2" true >"$ROOT/run.out" 2>&1 || rc=$?
  t1=$(date +%s%N)
  [ "$rc" = 0 ] || { echo "bench-shim: 'ctr run --rm --runtime $1' failed (exit $rc):" >&2; cat "$ROOT/run.out" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "warm-up..."
for rt in "$RUNC_RT" "$DK_RT"; do run_once "$rt" "warm-$(short "$rt")-$TOKEN" >/dev/null; done

echo "latency: $RUNS runs per runtime, alternating"
: >"$ROOT/lat.rc"; : >"$ROOT/lat.dk"
for i in $(seq "$RUNS"); do
  # Alternate which runtime goes first so neither always runs on a "warmer" machine.
  if [ $((i % 2)) = 1 ]; then order=("$RUNC_RT" "$DK_RT"); else order=("$DK_RT" "$RUNC_RT"); fi
  for rt in "${order[@]}"; do run_once "$rt" "lat-$(short "$rt")-$i-$TOKEN" >>"$ROOT/lat.$(short "$rt")"; done
done

echo "RSS: $RSS_SAMPLES shims per runtime serving 'sleep 1000'"
: >"$ROOT/rss.rc"; : >"$ROOT/rss.dk"
for i in $(seq "$RSS_SAMPLES"); do
  for rt in "$RUNC_RT" "$DK_RT"; do
    id="rss-$(short "$rt")-$i-$TOKEN"
    timeout 30 "${C[@]}" run -d --runtime "$rt" "$DK_IMAGE" "$id" sleep 1000 >/dev/null
    sleep 1
    init=$("${C[@]}" task ls | awk -v id="$id" '$1 == id { print $2 }')
    shim=$(awk '/^PPid:/ { print $2 }' "/proc/$init/status")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$shim/status")
    echo "$rss" >>"$ROOT/rss.$(short "$rt")"
    timeout 10 "${C[@]}" task kill -s SIGKILL "$id" >/dev/null
    for _ in $(seq 100); do [ "$("${C[@]}" task ls | awk -v id="$id" '$1 == id { print $3 }')" = STOPPED ] && break; sleep 0.05; done
    timeout 15 "${C[@]}" task rm "$id" >/dev/null 2>&1
    timeout 10 "${C[@]}" container rm "$id" >/dev/null
  done
done

lat_rc=$(median <"$ROOT/lat.rc"); lat_dk=$(median <"$ROOT/lat.dk")
rss_rc=$(median <"$ROOT/rss.rc"); rss_dk=$(median <"$ROOT/rss.dk")
lat_ratio=$(awk -v a="$lat_dk" -v b="$lat_rc" 'BEGIN { printf "%.3f", a / b }')
rss_ratio=$(awk -v a="$rss_dk" -v b="$rss_rc" 'BEGIN { printf "%.3f", a / b }')
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "ok" : "MISSED" }'; }

echo
printf '%-34s %14s %14s %10s %8s\n' "metric (median)" "runc.v2" "diffkeeper.v1" "ratio" "target"
printf '%-34s %14s %14s %10s %8s  %s\n' "ctr run --rm ... true (ms)" "$lat_rc" "$lat_dk" "$lat_ratio" "<= 1.10" "$(verdict "$lat_ratio" 1.10)"
printf '%-34s %14s %14s %10s %8s  %s\n' "shim VmRSS, steady (KiB)" "$rss_rc" "$rss_dk" "$rss_ratio" "<= $RSS_TARGET" "$(verdict "$rss_ratio" "$RSS_TARGET")"
echo "(latency runs: $RUNS per runtime; RSS samples: $RSS_SAMPLES per runtime)"

if [ "${BENCH_ENFORCE:-0}" = 1 ] && { [ "$(verdict "$lat_ratio" 1.10)" != ok ] || [ "$(verdict "$rss_ratio" "$RSS_TARGET")" != ok ]; }; then
  exit 1
fi
