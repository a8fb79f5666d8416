#!/usr/bin/env bash
# Lays out the installed file tree of the deb and rpm packages under DESTDIR, from what `make publish` built.
#   packaging/stage.sh DESTDIR UNITDIR        (UNITDIR: /lib/systemd/system for Debian, /usr/lib/systemd/system for rpm)
# Both packages hold exactly this tree, so the two formats cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
D=$1; UNITDIR=$2
ART=${ART:-$PWD/artifacts}

for f in "$ART/shim/containerd-shim-diffkeeper-v1" "$ART/daemon/diffkeeperd" "$ART/daemon/librocksdb.so" \
         "$ART/cli/diffkeeper" "$ART/cli/librocksdb.so" "$ART/bpf/diffkeeper.bpf.o"; do
  [ -f "$f" ] || { echo "stage.sh: $f is missing (run make publish)" >&2; exit 1; }
done
# diffkeeperd and diffkeeper share /usr/lib/diffkeeper/librocksdb.so: both publish the same NuGet asset.
cmp -s "$ART/daemon/librocksdb.so" "$ART/cli/librocksdb.so" ||
  { echo "stage.sh: the daemon's and the CLI's librocksdb.so differ" >&2; exit 1; }

rm -rf "$D"
install -d "$D/usr/bin" "$D/usr/lib/diffkeeper" "$D/etc/diffkeeper" "$D$UNITDIR" \
           "$D/usr/share/diffkeeper/containerd" "$D/usr/share/diffkeeper/kubernetes" \
           "$D/usr/share/bash-completion/completions" "$D/usr/share/doc/diffkeeper"
# The shim is one self-contained Native AOT file on containerd's PATH (containerd looks it up by name there).
install -m 0755 "$ART/shim/containerd-shim-diffkeeper-v1" "$D/usr/bin/"
# diffkeeperd and diffkeeper are Native AOT too (no .NET on the node); they load librocksdb.so and the eBPF object
# from the directory of their resolved executable, so they live in /usr/lib/diffkeeper with symlinks in /usr/bin.
install -m 0755 "$ART/daemon/diffkeeperd" "$ART/cli/diffkeeper" "$D/usr/lib/diffkeeper/"
install -m 0644 "$ART/daemon/librocksdb.so" "$ART/bpf/diffkeeper.bpf.o" "$D/usr/lib/diffkeeper/"
ln -s ../lib/diffkeeper/diffkeeperd "$D/usr/bin/diffkeeperd"
ln -s ../lib/diffkeeper/diffkeeper "$D/usr/bin/diffkeeper"
install -m 0644 packaging/config/config.toml "$D/etc/diffkeeper/config.toml"
install -m 0644 packaging/systemd/diffkeeperd.service "$D$UNITDIR/diffkeeperd.service"
install -m 0644 packaging/containerd/*.toml "$D/usr/share/diffkeeper/containerd/"
install -m 0644 packaging/kubernetes/*.yaml "$D/usr/share/diffkeeper/kubernetes/"
install -m 0644 packaging/completions/diffkeeper.bash "$D/usr/share/bash-completion/completions/diffkeeper"
install -m 0644 README.md docs/cli.md docs/recorder.md "$D/usr/share/doc/diffkeeper/"
# A private libbpf.so.1 for nodes whose distribution has none (Ubuntu 22.04, RHEL 9.0/9.1: libbpf 0.5 only). The
# daemon prefers the system's libbpf.so.1 and loads this one only when that is missing (DiffKeeper.Common's
# Libbpf; DIFFKEEPER_LIBBPF forces either). It is the build machine's distribution build (Debian 12's libbpf1:
# glibc >= 2.28, libelf.so.1, libz.so.1), copied as is with its copyright file; see docs/install.md.
LIBBPF_SO=$(readlink -f "${LIBBPF_SO:-/usr/lib/x86_64-linux-gnu/libbpf.so.1}")
readelf -d "$LIBBPF_SO" 2>/dev/null | grep -q 'Library soname: \[libbpf.so.1\]' ||
  { echo "stage.sh: $LIBBPF_SO is not a libbpf.so.1 (install libbpf1, or set LIBBPF_SO)" >&2; exit 1; }
install -d "$D/usr/lib/diffkeeper/libbpf"
install -m 0644 "$LIBBPF_SO" "$D/usr/lib/diffkeeper/libbpf/libbpf.so.1"
LIBBPF_COPYRIGHT=${LIBBPF_COPYRIGHT:-/usr/share/doc/libbpf1/copyright}
[ -f "$LIBBPF_COPYRIGHT" ] || { echo "stage.sh: $LIBBPF_COPYRIGHT is missing (libbpf's license must ship with it)" >&2; exit 1; }
install -m 0644 "$LIBBPF_COPYRIGHT" "$D/usr/share/doc/diffkeeper/libbpf.copyright"
printf '%s\n' "$(basename "$LIBBPF_SO")" >"$D/usr/lib/diffkeeper/libbpf/VERSION"
# No strip here: dotnet publish already moved the AOT binaries' symbols to .dbg files (StripSymbols).
