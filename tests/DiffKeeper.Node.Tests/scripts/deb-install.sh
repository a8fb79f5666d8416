#!/usr/bin/env bash
# Installs dist's .deb on this machine, starts diffkeeperd exactly as the installed unit's ExecStart says (there is
# no systemd as PID 1 here: we play its part — StateDirectory/RuntimeDirectory, NOTIFY_SOCKET), runs a container
# with `ctr --runtime io.containerd.diffkeeper.v1` on a private containerd that finds the installed shim on /usr/bin,
# then removes and purges the package and checks what is left. Cleans up on every exit path (daemon and containerd
# stopped by pid, package purged). Prints "CHECK …" lines; exits non-zero on the first failed check.
#   deb-install.sh DEB REPO
set -uo pipefail
DEB=$1; REPO=$2
work=$(mktemp -d /tmp/dk-deb-XXXXXX)
DAEMON_PID=""; NOTIFY_PID=""
source "$REPO/scripts/lib/private-containerd.sh"
DK_NS=dkdeb

cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
  [ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null
  dk_containerd_stop
  dpkg -s diffkeeper >/dev/null 2>&1 && dpkg -P diffkeeper >/dev/null 2>&1
  rm -rf "$work"
}
fail() { echo "FAIL: $*"; exit 1; }
check() { echo "CHECK $*"; }

# The package owns these paths and purge deletes them: refuse (exit 77, "not clean") rather than touch what is
# not ours. The cleanup trap is armed only after this, so it never purges someone else's installation.
notclean() { echo "NOT-CLEAN: $*"; rm -rf "$work"; exit 77; }
for p in /var/lib/diffkeeper /run/diffkeeper /etc/diffkeeper; do
  [ -e "$p" ] && notclean "$p exists before the test ($(ls "$p" 2>/dev/null | head -3 | tr '\n' ' '))"
done
dpkg -s diffkeeper >/dev/null 2>&1 && notclean "a diffkeeper package is already installed"
trap cleanup EXIT

dpkg -i "$DEB" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i"; }
check "installed: $(dpkg-query -W -f='${Package} ${Version} ${Status}' diffkeeper)"
for f in /usr/bin/containerd-shim-diffkeeper-v1 /usr/bin/diffkeeperd /usr/bin/diffkeeper /usr/lib/diffkeeper/librocksdb.so \
         /usr/lib/diffkeeper/diffkeeper.bpf.o /etc/diffkeeper/config.toml /lib/systemd/system/diffkeeperd.service; do
  [ -e "$f" ] || fail "$f missing after install"
done
# postinst enabled the unit (deb-systemd-helper works without systemd running).
[ -L /etc/systemd/system/multi-user.target.wants/diffkeeperd.service ] || fail "diffkeeperd.service was not enabled"
check "unit enabled"
/usr/bin/diffkeeper --version | grep -q "diffkeeper" || fail "diffkeeper --version"
/usr/bin/diffkeeperd --version | grep -q "diffkeeperd" || fail "diffkeeperd --version"

# The unit, as systemd would run it.
unit=/lib/systemd/system/diffkeeperd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify"
[ -n "$exec_start" ] || fail "no ExecStart"
install -d -m 0700 /var/lib/diffkeeper /run/diffkeeper          # StateDirectory=, RuntimeDirectory=
python3 - "$work/notify.sock" "$work/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(60)
with open(sys.argv[2], "wb") as f:
    while True:
        try: d = s.recv(4096)
        except socket.timeout: break
        f.write(d + b"\n"); f.flush()
PY
NOTIFY_PID=$!
for _ in $(seq 1 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
# shellcheck disable=SC2086  # ExecStart is a command line: split it as systemd does (no quoting in ours).
NOTIFY_SOCKET=$work/notify.sock setsid $exec_start >"$work/daemon.log" 2>&1 </dev/null &
DAEMON_PID=$!
for _ in $(seq 1 200); do grep -q READY=1 "$work/notify.out" 2>/dev/null && break; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
grep -q READY=1 "$work/notify.out" 2>/dev/null || { cat "$work/daemon.log"; fail "diffkeeperd sent no READY=1 to NOTIFY_SOCKET"; }
[ -S /run/diffkeeper/diffkeeperd.sock ] || fail "no socket at /run/diffkeeper/diffkeeperd.sock"
check "daemon ready (READY=1), socket /run/diffkeeper/diffkeeperd.sock, capture: $(grep -o 'capture [a-z]*' "$work/daemon.log" | head -1)"

# The installed doctor sees the installed shim on the default PATH and the running daemon.
/usr/bin/diffkeeper doctor --json >"$work/doctor.json" 2>&1
python3 - "$work/doctor.json" <<'PY' || { cat "$work/doctor.json"; fail "doctor after install"; }
import json, sys
rows = {r["check"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if "check" in r}
for c in ("shim on containerd's PATH", "daemon socket", "store", "libbpf"):
    assert rows[c]["ok"], rows[c]
assert "system libbpf.so.1" in json.dumps(rows["libbpf"]), rows["libbpf"]
PY
grep -q ' /usr/lib/diffkeeper/libbpf/' "/proc/$DAEMON_PID/maps" && fail "the daemon mapped the bundled libbpf although the system has libbpf1"
grep -q 'libbpf.so.1' "/proc/$DAEMON_PID/maps" || fail "the daemon mapped no libbpf"
grep -q 'with system libbpf.so.1' "$work/daemon.log" || { cat "$work/daemon.log"; fail "the daemon's log does not name the system's libbpf"; }
check "doctor: shim on PATH, daemon socket, store, libbpf ok (the system's libbpf.so.1, not the bundled one)"
DIFFKEEPER_LIBBPF=bundled /usr/bin/diffkeeper doctor --json >"$work/doctor-bundled.json" 2>&1
python3 - "$work/doctor-bundled.json" <<'PY' || { cat "$work/doctor-bundled.json"; fail "DIFFKEEPER_LIBBPF=bundled: doctor does not load the bundled libbpf"; }
import json, sys
rows = {r["check"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if "check" in r}
assert rows["libbpf"]["ok"] and "bundled /usr/lib/diffkeeper/libbpf/libbpf.so.1" in json.dumps(rows["libbpf"]), rows["libbpf"]
PY
check "DIFFKEEPER_LIBBPF=bundled: the installed bundled libbpf.so.1 loads"

# A private containerd whose PATH has /usr/bin (the installed shim) and nothing of ours: DIFFKEEPER_BIN_DIR unset.
unset DIFFKEEPER_BIN_DIR
dk_containerd_start "$work/containerd" || fail "private containerd did not start"
dk_busybox_image || fail "image import"
out=$(timeout 60 ctr -a "$DK_SOCK" -n "$DK_NS" run --rm --runtime io.containerd.diffkeeper.v1 "$DK_IMAGE" dkdeb1 \
      sh -c 'echo installed > /installed.txt; mkdir -p /var/log/app; echo line > /var/log/app/a.log; echo hello; exit 3')
rc=$?
[ "$rc" = 3 ] || fail "ctr run exit $rc (want 3): $out"
[ "$out" = hello ] || fail "ctr run output '$out'"
check "container ran under the installed shim: output hello, exit 3"
shim_path=$(cat "$work/containerd/state/io.containerd.runtime.v2.task/$DK_NS/dkdeb1/shim-binary-path" 2>/dev/null || true)

# The recording, through the installed CLI and the default store. Only a shim with the recorder hook records: it
# holds the daemon's default socket path (a .NET string literal: UTF-16 in the binary; searched without its last character, which AOT does not lay out reliably).
if python3 -c 'import sys; sys.exit(0 if "/run/diffkeeper/diffkeeperd.so".encode("utf-16-le") in open(sys.argv[1], "rb").read() else 1)' \
     /usr/bin/containerd-shim-diffkeeper-v1; then
  rec=""
  for _ in $(seq 1 100); do
    rec=$(/usr/bin/diffkeeper ls --json 2>/dev/null | grep '"dkdeb1"' | head -1)
    [ -n "$rec" ] && echo "$rec" | grep -q '"exit_status":3' && break; sleep 0.1
  done
  [ -n "$rec" ] || { /usr/bin/diffkeeper ls; cat "$work/daemon.log"; fail "no recording of dkdeb1 in the default store"; }
  id=$(echo "$rec" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
  [ "$(/usr/bin/diffkeeper show "$id" /installed.txt)" = installed ] || fail "show /installed.txt"
  check "recorded: $rec"
else
  check "SKIP-RECORDING: the shim in this tree has no recorder hook (no daemon socket path in it)"
fi

# Stop the daemon as systemd would (SIGTERM), then remove: binaries gone, conffile and store kept.
kill "$DAEMON_PID"; for _ in $(seq 1 400); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "diffkeeperd did not stop on SIGTERM"
wait "$DAEMON_PID"; drc=$?; DAEMON_PID=""
[ "$drc" = 0 ] || { cat "$work/daemon.log"; fail "diffkeeperd exit $drc on SIGTERM"; }
check "daemon stopped on SIGTERM (exit 0)"
dk_containerd_stop
dpkg -r diffkeeper >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r"; }
for f in /usr/bin/containerd-shim-diffkeeper-v1 /usr/bin/diffkeeperd /usr/bin/diffkeeper /usr/lib/diffkeeper /lib/systemd/system/diffkeeperd.service; do
  [ -e "$f" ] && fail "$f still there after remove"
done
[ -f /etc/diffkeeper/config.toml ] || fail "remove deleted the conffile"
[ -d /var/lib/diffkeeper ] || fail "remove deleted the store"
check "removed: binaries gone; /etc/diffkeeper/config.toml and /var/lib/diffkeeper kept; status $(dpkg-query -W -f='${Status}' diffkeeper)"
dpkg -P diffkeeper >"$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P"; }
for p in /etc/diffkeeper /var/lib/diffkeeper /run/diffkeeper /etc/systemd/system/multi-user.target.wants/diffkeeperd.service; do
  [ -e "$p" ] || [ -L "$p" ] && fail "$p still there after purge"
done
dpkg -s diffkeeper >/dev/null 2>&1 && fail "package still known after purge"
check "purged: nothing left"
echo "OK"
