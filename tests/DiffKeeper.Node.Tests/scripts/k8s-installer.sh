#!/usr/bin/env bash
# Runs the DaemonSet installer's script (taken out of packaging/kubernetes/daemonset-installer.yaml by the test)
# as its pod would, against a throwaway host root (host-root.sh) instead of a node: HOST_ROOT is that root,
# PKG_ROOT the .deb's file tree (what the installer image holds), ON_HOST="chroot ROOT" instead of nsenter into
# PID 1, under busybox sh — so `diffkeeper setup containerd` and systemctl run on the "host" for real (systemctl offline, as in any
# chroot: enable works, start/restart are ignored: no systemd runs here). Twice: the second run must change nothing.
#   unshare -m --propagation private k8s-installer.sh SCRIPT PKG_TREE CONTAINERD_CONFIG
set -uo pipefail
SCRIPT=$1; PKG=$2; CONFIG=$3
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || { echo "FAIL: run me in a private mount namespace"; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dk-k8s-XXXXXX)
source "$here/host-root.sh"
cleanup() {
  awk -v d="$work" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
check() { echo "CHECK $*"; }

hr_make "$work/h" || fail "host root"
mkdir -p "$HR/etc/containerd"; cp "$CONFIG" "$HR/etc/containerd/config.toml"
# SYSTEMD_OFFLINE=1: systemctl as in any chroot (no PID 1 systemd here): enable writes the symlinks, start/restart and
# daemon-reload are reported as ignored.
# The pod's side runs under busybox's sh with only busybox's applets on PATH, as in a busybox-based installer image.
mkdir -p "$work/bb"; for a in $(/bin/busybox --list); do ln -s /bin/busybox "$work/bb/$a"; done
run() {
  PATH=$work/bb HOST_ROOT=$HR PKG_ROOT=$PKG INSTALL_ONLY=1 \
    ON_HOST="env SYSTEMD_OFFLINE=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot $HR" /bin/busybox sh -euc "$(cat "$SCRIPT")" 2>&1
}

out1=$(run); rc=$?
[ "$rc" = 0 ] || { echo "$out1"; fail "installer run 1 exit $rc"; }
echo "$out1" | sed 's/^/  run1| /'
for f in bin/containerd-shim-diffkeeper-v1 lib/diffkeeper/diffkeeperd lib/diffkeeper/diffkeeper lib/diffkeeper/librocksdb.so \
         lib/diffkeeper/diffkeeper.bpf.o lib/diffkeeper/libbpf/libbpf.so.1; do
  src=$PKG/usr/$f; [ "$f" = bin/containerd-shim-diffkeeper-v1 ] || src=$PKG/usr/lib/diffkeeper/${f#lib/diffkeeper/}
  cmp -s "$src" "$HR/usr/local/$f" || fail "/usr/local/$f is not the package's"
done
[ -x "$HR/usr/local/lib/diffkeeper/diffkeeperd" ] && [ -x "$HR/usr/local/bin/containerd-shim-diffkeeper-v1" ] || fail "not executable"
[ "$(readlink "$HR/usr/local/bin/diffkeeper")" = ../lib/diffkeeper/diffkeeper ] || fail "diffkeeper symlink"
grep -Eq '^ExecStart=/usr/local/bin/diffkeeperd( |$)' "$HR/etc/systemd/system/diffkeeperd.service" || fail "unit ExecStart: $(grep ExecStart "$HR/etc/systemd/system/diffkeeperd.service")"
[ -L "$HR/etc/systemd/system/multi-user.target.wants/diffkeeperd.service" ] || fail "unit not enabled"
cmp -s "$PKG/etc/diffkeeper/config.toml" "$HR/etc/diffkeeper/config.toml" || fail "config.toml"
chroot "$HR" /usr/local/bin/diffkeeperd --version | grep -q diffkeeperd || fail "the installed daemon does not run on the host"
check "run 1 installed: shim, daemon, CLI, librocksdb, BPF object, bundled libbpf under /usr/local; unit enabled (ExecStart=/usr/local/bin/diffkeeperd)"
echo "$out1" | grep -q 'restart containerd to apply' || fail "setup did not change containerd's config"
dump=$(containerd --config "$HR/etc/containerd/config.toml" config dump 2>&1) || { echo "$dump" | tail -5; fail "containerd cannot load the edited config"; }
echo "$dump" | awk '/runtimes\.diffkeeper\]/ {f = 1; next} /^ *\[/ {f = 0} f' | grep -q 'runtime_type = "io.containerd.diffkeeper.v1"' ||
  { echo "$dump" | grep -A6 runtimes; fail "containerd config dump has no diffkeeper runtime"; }
check "setup containerd ran on the host's config: containerd config dump shows runtimes.diffkeeper (io.containerd.diffkeeper.v1)"
[ -f "$HR/etc/containerd/config.toml.diffkeeper-backup" ] || fail "no backup of containerd's config"

before=$(cd "$HR" && find etc usr/local -type f -print0 | sort -z | xargs -0 sha256sum; stat -c '%i %n' usr/local/lib/diffkeeper/diffkeeperd)
out2=$(run); rc=$?
[ "$rc" = 0 ] || { echo "$out2"; fail "installer run 2 exit $rc"; }
echo "$out2" | sed 's/^/  run2| /'
echo "$out2" | grep -q 'containerd needs no restart' || fail "run 2 changed containerd's config"
echo "$out2" | grep -q 'installed; nothing changed' || fail "run 2 replaced files"
after=$(cd "$HR" && find etc usr/local -type f -print0 | sort -z | xargs -0 sha256sum; stat -c '%i %n' usr/local/lib/diffkeeper/diffkeeperd)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "run 2 changed the host"; }
check "run 2 changed nothing (containerd config, files, inodes byte-identical)"
echo OK
