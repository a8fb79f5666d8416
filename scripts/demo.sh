#!/usr/bin/env bash
# `sudo make demo`: a container that writes and crashes under io.containerd.diffkeeper.v1, then its timeline and
# the exported crash state. Uses a private containerd (nothing touches the system one) and a store in
# /var/tmp/diffkeeper-demo that is kept afterwards so you can explore it with `diffkeeper --store …`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${DIFFKEEPER_BIN_DIR:-$here/../artifacts/bin}
OUT=${DEMO_DIR:-/var/tmp/diffkeeper-demo}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo make demo): it starts containerd and mounts overlays" >&2; exit 1; }
for p in containerd runc busybox-static; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }
done
[ -x "$BIN/containerd-shim-diffkeeper-v1" ] || { echo "demo: $BIN/containerd-shim-diffkeeper-v1 missing: run make build" >&2; exit 1; }

. "$here/lib/private-containerd.sh"
trap dk_containerd_stop EXIT
dk_containerd_start "$(mktemp -d /tmp/dk-demo-XXXXXX)"
dk_busybox_image
dk() { "$BIN/diffkeeper" --store "$OUT/store" "$@"; }
rm -rf "$OUT"; mkdir -p "$OUT"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "A 'CI job' runs under io.containerd.diffkeeper.v1: it writes, edits, deletes, then fails"
job='mkdir -p /work && echo "build started" > /work/build.log
     echo "retries=3" > /etc/app.conf; sleep 1
     echo "compiling" >> /work/build.log; dd if=/dev/urandom of=/work/cache.bin bs=64k count=16 2>/dev/null; sleep 1
     echo "retries=0" > /etc/app.conf; rm /etc/passwd; echo "FATAL: out of retries" >> /work/build.log; sleep 1
     echo "step 3 failed" >&2; exit 3'
dkctr run --runtime io.containerd.diffkeeper.v1 "$DK_IMAGE" ci-job sh -c "$job" &
runner=$!

# Until the recorder daemon (eBPF) lands, this demo captures the container's overlay upper layer itself, every
# half second and once more at exit, through the same ingest path the daemon will use (`diffkeeper snapshot`).
upper=""
while kill -0 "$runner" 2>/dev/null; do
  if [ -z "$upper" ]; then
    upper=$(dkctr snapshots mounts /tmp ci-job 2>/dev/null | sed -n 's/.*upperdir=\([^,]*\).*/\1/p' || true)
  fi
  [ -n "$upper" ] && dk -q snapshot "$upper" --recording ci-job >/dev/null
  sleep 0.5
done
set +e; wait "$runner"; status=$?; set -e
echo "the job exited with status $status"
dk -q snapshot "$upper" --recording ci-job >/dev/null      # the crash state: task exited, rootfs not yet removed
dkctr task rm ci-job >/dev/null 2>&1 || true
dkctr container rm ci-job
echo "the container is gone: $(dkctr container ls -q | grep -c ci-job || true) containers named ci-job remain"

say "diffkeeper ls"
dk ls
say "diffkeeper timeline ci-job"
dk timeline ci-job
say "diffkeeper diff ci-job start end"
dk diff ci-job start end
say "diffkeeper show ci-job /work/build.log --at end"
dk show ci-job /work/build.log --at end
say "diffkeeper export ci-job --at end --out $OUT/crash-state"
dk export ci-job --at end --out "$OUT/crash-state"
(cd "$OUT/crash-state" && find . -mindepth 1 | sort)
echo
echo "Explore further: $BIN/diffkeeper --store $OUT/store timeline ci-job --json"
