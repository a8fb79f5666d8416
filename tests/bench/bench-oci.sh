#!/usr/bin/env bash
# Taking a moment elsewhere, measured against its peer in the same run (issue 11), on a recording of a container
# that changed 2,000 files (BENCH_FILES, 8 KiB of random bytes each):
#   export --oci       vs  export --out DIR of the same moment              target: <= 2x
#   replay -- CMD      vs  ctr run of the same image, to the first output line   target: <= 1.5x
#                      (a first replay of the moment, one with --cache after the state snapshot was kept, and a
#                      first replay of a one-file recording: the fixed cost without writing 2,000 files)
#   second push        of a recording sharing 90% of its chunks with one already pushed: uploaded / total bytes
#                      target: <= 20%
# Peers alternate, BENCH_ROUNDS rounds (default 5); medians and ratios printed with the load average. A private
# containerd and Debian's docker-registry on 127.0.0.1 are started here and stopped by pid at the end.
# Usage: tests/bench/bench-oci.sh   (binaries from $DIFFKEEPER_BIN_DIR, default artifacts/bin;
#        BENCH_PARTS="export replay push" to run only some)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${DIFFKEEPER_BIN_DIR:-$repo/artifacts/bin}
ROUNDS=${BENCH_ROUNDS:-5}
FILES=${BENCH_FILES:-2000}
PARTS=${BENCH_PARTS:-export replay push}
part() { [[ " $PARTS " == *" $1 "* ]]; }
CLI=$BIN/diffkeeper

die() { echo "bench-oci: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (containerd)"
[ -x "$CLI" ] || die "$CLI missing (run 'make build')"
for t in containerd ctr runc docker-registry python3; do command -v $t >/dev/null || die "needs $t"; done
[ -x /bin/busybox ] || die "needs busybox-static"

tmp=$(mktemp -d /var/tmp/dk-bench-oci.XXXXXX)
export DK_NS=dk-bench-oci DK_IMAGE=localhost/dk-bench-oci:1
source "$repo/scripts/lib/private-containerd.sh"
registry_pid=
cleanup() {
  set +e   # best effort: one failing step must not skip the others
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; fi
  dk_containerd_stop
  rm -rf "$tmp"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s%N; }
ms() { awk -v n="$1" 'BEGIN {printf "%.1f", n / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# Nanoseconds from start to the first line the command prints (the rest is drained, not timed).
first_line() { local t0; t0=$(now); "$@" | { IFS= read -r _; t=$(now); cat >/dev/null; echo $((t - t0)); }; }

store=$tmp/store
dk() { "$CLI" --store "$store" "$@"; }

# Two recordings: r1 (2,000 files) and r2, the same files but 10% of them rewritten.
up=$tmp/upper
mkdir -p "$up/app/data"
python3 - "$up/app/data" "$FILES" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
for i in range(n):
    with open(f"{d}/f{i:05}", "wb") as f: f.write(r.randbytes(8192))
PY
dk snapshot "$up" --recording r1 --at 2026-11-30T10:00:00Z >/dev/null
python3 - "$up/app/data" "$FILES" <<'PY'
import random, sys
d, n = sys.argv[1], int(sys.argv[2])
r = random.Random(8)
for i in range(0, n, 10):
    with open(f"{d}/f{i:05}", "wb") as f: f.write(r.randbytes(8192))
PY
dk snapshot "$up" --recording r2 --at 2026-11-30T11:00:00Z >/dev/null
# r0: one small file — a first replay of it is replay's fixed cost without the file system's cost of 2,000 files.
mkdir -p "$tmp/upper0/app" && echo one >"$tmp/upper0/app/one"
dk snapshot "$tmp/upper0" --recording r0 --at 2026-11-30T10:00:00Z >/dev/null

dk_containerd_start "$tmp/containerd" >/dev/null
dk_busybox_image

echo "bench-oci: $FILES files of 8 KiB, $ROUNDS rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# export --out DIR vs export --oci FILE.tar
if part export; then
declare -a dir_t oci_t
for ((r = 1; r <= ROUNDS; r++)); do
  rm -rf "$tmp/out" "$tmp/img.tar"
  t0=$(now); dk export r1 --out "$tmp/out" >/dev/null; dir_t+=($(($(now) - t0)))
  t0=$(now); dk export r1 --oci "$tmp/img.tar" --image "$DK_IMAGE" --address "$DK_SOCK" --namespace "$DK_NS" --tag localhost/r1:bench >/dev/null; oci_t+=($(($(now) - t0)))
done
d=$(printf '%s\n' "${dir_t[@]}" | median); o=$(printf '%s\n' "${oci_t[@]}" | median)
echo "export --out DIR     median $(ms "$d") ms"
echo "export --oci         median $(ms "$o") ms   ratio $(ratio "$o" "$d") (target <= 2)"
fi

# ctr run vs replay, to the first output line: a first replay of the moment (the state written into the snapshot),
# and a replay --cache once the state snapshot is kept (it is made by one untimed replay first).
if part replay; then
rp() { rpof r1 "$@"; }
rpof() { local rec=$1; shift; "$CLI" --store "$store" replay "$rec" --image "$DK_IMAGE" --address "$DK_SOCK" --namespace "$DK_NS" "$@"; }
echo "one first replay, step by step (ms since the process started):"
rp -v -- echo first 2>&1 >/dev/null | sed 's/^/  /'
rp --cache -- true
# The floor of a first replay: only writing the same files (cp -a of an export of the moment, on the same file
# system as containerd's snapshots) costs this much.
dk export r1 --out "$tmp/state" >/dev/null
declare -a ctr_t rep_t cache_t cp_t small_t
for ((r = 1; r <= ROUNDS; r++)); do
  ctr_t+=($(first_line ctr -a "$DK_SOCK" -n "$DK_NS" run --rm "$DK_IMAGE" "dk-bench-$r" echo first))
  rep_t+=($(first_line rp -- echo first))
  cache_t+=($(first_line rp --cache -- echo first))
  small_t+=($(first_line rpof r0 -- echo first))
  rm -rf "$tmp/state-copy"; t0=$(now); cp -a "$tmp/state" "$tmp/state-copy"; cp_t+=($(($(now) - t0)))
done
c=$(printf '%s\n' "${ctr_t[@]}" | median); p=$(printf '%s\n' "${rep_t[@]}" | median); k=$(printf '%s\n' "${cache_t[@]}" | median)
w=$(printf '%s\n' "${cp_t[@]}" | median)
f=$(printf '%s\n' "${small_t[@]}" | median)
echo "ctr run              median $(ms "$c") ms to the first line"
echo "cp -a of the state   median $(ms "$w") ms   ratio to ctr run $(ratio "$w" "$c") (the files alone)"
echo "replay (first)       median $(ms "$p") ms to the first line   ratio $(ratio "$p" "$c") (target <= 1.5)"
echo "replay of 1 file     median $(ms "$f") ms to the first line   ratio $(ratio "$f" "$c") (replay's fixed cost)"
echo "replay --cache (hit) median $(ms "$k") ms to the first line   ratio $(ratio "$k" "$c") (target <= 1.5)"
fi

# push r1, then r2 (90% of its chunks shared) to the same repository
if part push; then
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
j1=$(dk push r1 "oci://127.0.0.1:$port/bench/rec:r1" --plain-http --json)
j2=$(dk push r2 "oci://127.0.0.1:$port/bench/rec:r2" --plain-http --json)
u1=$(field uploaded_bytes <<<"$j1"); u2=$(field uploaded_bytes <<<"$j2"); b2=$(field bytes <<<"$j2")
echo "first push           uploaded $u1 bytes"
echo "second push          uploaded $u2 of $b2 bytes   ratio $(ratio "$u2" "$b2") (target <= 0.20)"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
