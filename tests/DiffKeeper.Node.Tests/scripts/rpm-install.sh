#!/usr/bin/env bash
# Installs dist's .rpm with this (Debian) machine's rpm into temp roots — there is no RHEL/Fedora here — and runs
# what it installed. Run it in its own mount namespace: unshare -m --propagation private rpm-install.sh RPM REPO
#  A. scriptlets: `rpm --root` into a host root (host-root.sh: this machine's /usr under an overlay), WITH the
#     scriptlets (rpm runs them chrooted there): %post enables the unit (systemctl, offline in a chroot), the
#     installed binaries run chrooted, `rpm -V` verifies every file, `rpm -e` runs %preun (unit disabled), keeps a
#     modified conffile as .rpmsave, and leaves no other file behind.
#  B. the installed files record a container: `rpm --root R -i --nodeps --noscripts` into a bare directory, the
#     system's libbpf.so.1 hidden (bind-mounted over with an empty file) so the daemon falls back to the bundled
#     one, diffkeeperd from R with a private store and socket, a private containerd that finds R's shim, a
#     container run with ctr, the recording read with R's CLI; then `rpm -e` leaves nothing but the rpmdb.
# Prints "CHECK …" lines; exits non-zero on the first failed check; cleans up on every exit path.
set -uo pipefail
RPM=$1; REPO=$2
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] ||
  { echo "FAIL: run me in a private mount namespace (unshare -m --propagation private)"; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dk-rpm-XXXXXX)
DAEMON_PID=""
source "$here/host-root.sh"
source "$REPO/scripts/lib/private-containerd.sh"
DK_NS=dkrpm
DB=(--define "_dbpath /var/lib/rpm")
cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
  dk_containerd_stop
  # Our mounts (the namespace drops them anyway when the script ends).
  awk -v d="$work" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  [ -n "${HIDDEN:-}" ] && umount "$HIDDEN"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
check() { echo "CHECK $*"; }
name=$(rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}' "$RPM")

# ---- A. scriptlets, in a chroot ----
hr_make "$work/a" || fail "host root"
# systemctl in the scriptlets as in any chroot (no systemd as PID 1 here): enable/disable edit the symlinks, the rest
# is reported as ignored.
export SYSTEMD_OFFLINE=1
rpm --root "$HR" "${DB[@]}" --initdb || fail "rpm --initdb"
rpm --root "$HR" "${DB[@]}" -i --nodeps "$RPM" >"$work/rpm-i.log" 2>&1 || { cat "$work/rpm-i.log"; fail "rpm -i (with scriptlets)"; }
grep -q "run: diffkeeper setup containerd" "$work/rpm-i.log" || { cat "$work/rpm-i.log"; fail "%post printed no setup hint"; }
[ "$(rpm --root "$HR" "${DB[@]}" -qa)" = "$name" ] || fail "rpm -qa: $(rpm --root "$HR" "${DB[@]}" -qa)"
v=$(rpm --root "$HR" "${DB[@]}" -V --nodeps diffkeeper 2>&1) || fail "rpm -V: $v"
check "installed with scriptlets: rpm -qa = $name, rpm -V clean"
wants=$HR/etc/systemd/system/multi-user.target.wants/diffkeeperd.service
# (the link names the unit where systemctl found it: /lib/systemd/system on this merged-/usr Debian)
link=$(readlink "$wants")
[ -n "$link" ] && [ "$(readlink -f "$HR$link")" = "$(readlink -f "$HR/usr/lib/systemd/system/diffkeeperd.service")" ] || fail "%post did not enable the unit ($(ls -la "$HR/etc/systemd/system"))"
check "%post enabled diffkeeperd.service (systemctl in the chroot)"
chroot "$HR" /usr/bin/diffkeeperd --version | grep -q diffkeeperd || fail "chrooted diffkeeperd --version"
chroot "$HR" /usr/bin/diffkeeper --version | grep -q diffkeeper || fail "chrooted diffkeeper --version"
check "installed binaries run (chrooted): $(chroot "$HR" /usr/bin/diffkeeperd --version | head -1)"
[ -z "$(find "$HR/etc/containerd" 2>/dev/null)" ] || fail "the scriptlets touched /etc/containerd"
echo "# changed by the administrator" >>"$HR/etc/diffkeeper/config.toml"
rpm --root "$HR" "${DB[@]}" -e diffkeeper >"$work/rpm-e.log" 2>&1 || { cat "$work/rpm-e.log"; fail "rpm -e (with scriptlets)"; }
[ -e "$wants" ] || [ -L "$wants" ] && fail "%preun did not disable the unit"
[ -f "$HR/etc/diffkeeper/config.toml.rpmsave" ] && [ ! -e "$HR/etc/diffkeeper/config.toml" ] || fail "modified conffile: want config.toml.rpmsave ($(ls "$HR/etc/diffkeeper" 2>&1))"
left=$(hr_usr_files)
[ -z "$left" ] || fail "rpm -e left files under /usr: $left"
[ -z "$(rpm --root "$HR" "${DB[@]}" -qa)" ] || fail "still in the rpmdb after rpm -e"
check "erased with scriptlets: unit disabled, modified config kept as config.toml.rpmsave, nothing left under /usr"

unset SYSTEMD_OFFLINE

# ---- B. the installed files record a container, with the bundled libbpf ----
R=$work/b
mkdir -p "$R"
rpm --root "$R" "${DB[@]}" --initdb && rpm --root "$R" "${DB[@]}" -i --nodeps --noscripts "$RPM" || fail "rpm -i --root (no scriptlets)"
want=$(rpm -qlp "$RPM" | sort)
got=$(cd "$R" && find . -path ./var/lib/rpm -prune -o ! -type d -printf '/%P\n' | sort)
missing=$(comm -23 <(for f in $want; do [ -d "$R$f" ] || echo "$f"; done) <(echo "$got"))
extra=$(comm -13 <(echo "$want") <(echo "$got"))
[ -z "$missing$extra" ] || fail "installed tree differs from rpm -qlp: missing [$missing] extra [$extra]"
check "rpm --root -i: the installed files are exactly rpm -qlp's ($(echo "$got" | wc -l) files)"

sys=$(readlink -f /usr/lib/x86_64-linux-gnu/libbpf.so.1 2>/dev/null || true)
if [ -f "$sys" ]; then : >"$work/empty"; mount --bind "$work/empty" "$sys" || fail "hide $sys"; HIDDEN=$sys; fi
export DIFFKEEPER_STORE=$work/store DIFFKEEPER_SOCKET=$work/dk.sock
unset DIFFKEEPER_LIBBPF
# the node check (with DIFFKEEPER_STORE it would check only that store)
env -u DIFFKEEPER_STORE "$R/usr/bin/diffkeeper" doctor --json >"$work/doctor.json" 2>&1
python3 - "$work/doctor.json" "$R/usr/lib/diffkeeper/libbpf/libbpf.so.1" <<'PY' || { cat "$work/doctor.json"; fail "doctor does not report the bundled libbpf"; }
import json, sys
rows = {r["check"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if "check" in r}
r = rows["libbpf"]; assert r["ok"] and sys.argv[2] in json.dumps(r), r
PY
env -u DIFFKEEPER_STORE DIFFKEEPER_LIBBPF=system "$R/usr/bin/diffkeeper" doctor --json >"$work/doctor-system.json" 2>&1
python3 - "$work/doctor-system.json" <<'PY' || { cat "$work/doctor-system.json"; fail "DIFFKEEPER_LIBBPF=system: doctor should find no libbpf with the system's hidden"; }
import json, sys
rows = {r["check"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if "check" in r}
assert not rows["libbpf"]["ok"], rows["libbpf"]
PY
check "system libbpf.so.1 hidden${HIDDEN:+ ($HIDDEN)}; doctor: bundled libbpf loads (and DIFFKEEPER_LIBBPF=system finds none)"
setsid "$R/usr/bin/diffkeeperd" --store "$DIFFKEEPER_STORE" --socket "$DIFFKEEPER_SOCKET" >"$work/daemon.log" 2>&1 </dev/null &
DAEMON_PID=$!
for _ in $(seq 1 200); do [ -S "$DIFFKEEPER_SOCKET" ] && break; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
[ -S "$DIFFKEEPER_SOCKET" ] || { cat "$work/daemon.log"; fail "diffkeeperd from the rpm root did not listen"; }
grep -q "capture ready" "$work/daemon.log" || { cat "$work/daemon.log"; fail "capture is not live"; }
grep -q "with bundled $R/usr/lib/diffkeeper/libbpf/libbpf.so.1" "$work/daemon.log" || { cat "$work/daemon.log"; fail "the daemon's log does not name the bundled libbpf"; }
grep -q " $R/usr/lib/diffkeeper/libbpf/libbpf.so.1\$" "/proc/$DAEMON_PID/maps" || { grep libbpf "/proc/$DAEMON_PID/maps"; fail "the daemon did not map the bundled libbpf"; }
grep -q "libbpf.so.1.1" <(grep -v " $R/" "/proc/$DAEMON_PID/maps") && fail "the daemon mapped the system libbpf too"
check "daemon from the rpm root: capture ready, bundled libbpf mapped ($R/usr/lib/diffkeeper/libbpf/libbpf.so.1)"

DIFFKEEPER_BIN_DIR=$R/usr/bin dk_containerd_start "$work/containerd" || fail "private containerd did not start"
dk_busybox_image || fail "image import"
out=$(timeout 60 ctr -a "$DK_SOCK" -n "$DK_NS" run --rm --runtime io.containerd.diffkeeper.v1 "$DK_IMAGE" dkrpm1 \
      sh -c 'echo from-rpm > /installed.txt; mkdir -p /var/log/app; for i in 1 2 3; do echo $i >> /var/log/app/a.log; sleep 0.3; done; echo hello; exit 4')
rc=$?
[ "$rc" = 4 ] && [ "$out" = hello ] || fail "ctr run: exit $rc output '$out' (want 4, hello)"
[ "$(readlink -f "$work/containerd/bin/containerd-shim-diffkeeper-v1")" = "$R/usr/bin/containerd-shim-diffkeeper-v1" ] || fail "containerd's shim is not the rpm root's"
check "container ran under the rpm root's shim: output hello, exit 4"
rec=""
for _ in $(seq 1 100); do
  rec=$("$R/usr/bin/diffkeeper" ls --json 2>/dev/null | grep '"dkrpm1"' | head -1)
  [ -n "$rec" ] && echo "$rec" | grep -q '"exit_status":4' && break; sleep 0.1
done
echo "$rec" | grep -q '"exit_status":4' || { "$R/usr/bin/diffkeeper" ls; cat "$work/daemon.log"; fail "no finished recording of dkrpm1"; }
id=$(echo "$rec" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')
[ "$("$R/usr/bin/diffkeeper" show "$id" /installed.txt)" = from-rpm ] || fail "show /installed.txt"
n=$("$R/usr/bin/diffkeeper" timeline "$id" --path /var/log/app/a.log 2>/dev/null | grep -c 'a.log')
[ "$n" -ge 1 ] || { "$R/usr/bin/diffkeeper" timeline "$id"; fail "no live change of /var/log/app/a.log in the timeline"; }
check "recorded by the rpm root's daemon: $rec; timeline has $n a.log changes"

kill "$DAEMON_PID"; for _ in $(seq 1 400); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DAEMON_PID"; drc=$?; DAEMON_PID=""
[ "$drc" = 0 ] || { cat "$work/daemon.log"; fail "diffkeeperd exit $drc on SIGTERM"; }
dk_containerd_stop
rpm --root "$R" "${DB[@]}" -e --noscripts diffkeeper || fail "rpm -e --root"
left=$(cd "$R" && find . -path ./var/lib/rpm -prune -o ! -type d -printf '/%P\n')
[ -z "$left" ] || fail "rpm -e left files: $left"
check "rpm -e --root removed every file it installed"
echo OK
