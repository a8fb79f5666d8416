#!/usr/bin/env bash
# `sudo make demo`: the flight recorder for real. A private containerd and diffkeeperd (eBPF capture + store) are
# started; a "CI job" container runs under io.containerd.diffkeeper.v1 with --rm: it writes, edits an image file,
# deletes a temp file, corrupts a file and crashes. The container is gone afterwards; its recording is not: ls
# (exit status), the timeline with processes, diff, show and the exported crash state. Everything the demo started
# is stopped and removed at the end; the store stays in /var/tmp/diffkeeper-demo to explore with `diffkeeper --store …`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${DIFFKEEPER_BIN_DIR:-$here/../artifacts/bin}
OUT=${DEMO_DIR:-/var/tmp/diffkeeper-demo}

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo make demo): it starts containerd, loads eBPF programs and mounts overlays" >&2; exit 1; }
for p in containerd runc busybox-static libbpf1; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }
done
for b in containerd-shim-diffkeeper-v1 diffkeeperd diffkeeper; do
  [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing: run make build" >&2; exit 1; }
done

. "$here/lib/private-containerd.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
# The shim finds the daemon through these, inherited from containerd's environment.
export DIFFKEEPER_SOCKET=$OUT/diffkeeperd.sock DIFFKEEPER_STORE=$OUT/store
daemon=""
stop_all() {
  set +e
  dk_containerd_stop
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; fi
  rm -f "$DIFFKEEPER_SOCKET"
}
trap stop_all EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "diffkeeperd: one per node, eBPF change capture, store in $DIFFKEEPER_STORE"
"$BIN/diffkeeperd" --store "$DIFFKEEPER_STORE" --socket "$DIFFKEEPER_SOCKET" --config /dev/null >"$OUT/diffkeeperd.log" 2>&1 &
daemon=$!
for _ in $(seq 1 100); do [ -S "$DIFFKEEPER_SOCKET" ] && break; kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
[ -S "$DIFFKEEPER_SOCKET" ] || { echo "demo: diffkeeperd did not start:" >&2; tail -20 "$OUT/diffkeeperd.log" >&2; exit 1; }
echo "diffkeeperd is up (pid $daemon)"

dk_containerd_start "$(mktemp -d /tmp/dk-demo-XXXXXX)"
dk_busybox_image
dk() { "$BIN/diffkeeper" --store "$DIFFKEEPER_STORE" "$@"; }

say "A 'CI job' runs under io.containerd.diffkeeper.v1 (ctr run --rm): it writes, edits, deletes, corrupts, then fails"
job='mkdir -p /work && echo "build started" > /work/build.log
     echo "{\"ok\": true, \"items\": [1, 2, 3]}" > /work/state.json
     echo "retries=3" > /etc/app.conf; touch /tmp/build.lock; sleep 1
     echo "compiling" >> /work/build.log; dd if=/dev/urandom of=/work/cache.bin bs=64k count=16 2>/dev/null; sleep 1
     echo "retries=0" > /etc/app.conf; rm /etc/passwd /tmp/build.lock
     printf "\\000\\000garbage" | dd of=/work/state.json bs=1 seek=5 conv=notrunc 2>/dev/null
     echo "FATAL: out of retries" >> /work/build.log; sleep 1
     echo "step 3 failed" >&2; exit 3'
set +e
dkctr run --rm --runtime io.containerd.diffkeeper.v1 "$DK_IMAGE" ci-job sh -c "$job"
status=$?
set -e
echo "the job exited with status $status; the container is gone: $(dkctr container ls -q | grep -c ci-job || true) containers named ci-job remain"
# The exit state is frozen by the shim before Delete returns and ingested by the daemon in the background.
for _ in $(seq 1 100); do dk ls --json 2>/dev/null | grep -q '"exit_status":3' && break; sleep 0.1; done

say "diffkeeper ls"
dk ls
say "diffkeeper timeline ci-job"
dk timeline ci-job
say "diffkeeper diff ci-job start end"
dk diff ci-job start end
say "diffkeeper show ci-job /work/build.log --at end"
dk show ci-job /work/build.log --at end
say "diffkeeper show ci-job /etc/app.conf --at 1.5s   (as it was before the failing step)"
dk show ci-job /etc/app.conf --at 1.5s
say "diffkeeper export ci-job --at end --out $OUT/crash-state"
dk export ci-job --at end --out "$OUT/crash-state"
(cd "$OUT/crash-state" && find . -mindepth 1 | sort)
echo
echo "Explore further: $BIN/diffkeeper --store $DIFFKEEPER_STORE timeline ci-job --json"
