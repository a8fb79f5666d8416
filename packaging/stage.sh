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
# No strip here: dotnet publish already moved the AOT binaries' symbols to .dbg files (StripSymbols).
