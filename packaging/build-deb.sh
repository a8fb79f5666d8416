#!/usr/bin/env bash
# make deb → dist/diffkeeper_<version>_amd64.deb, built with dpkg-deb from the tree packaging/stage.sh lays out.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:?VERSION is required}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$work/root
packaging/stage.sh "$root" /lib/systemd/system

# Library dependencies of the ELF files, the way debhelper computes them (dpkg-shlibdeps wants a debian/control
# in its working directory). librocksdb.so is ours (private, in /usr/lib/diffkeeper): -l tells it where it is.
mkdir -p "$work/debian"
printf 'Source: diffkeeper\n\nPackage: diffkeeper\nArchitecture: amd64\n' >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -l"$root/usr/lib/diffkeeper" -e root/usr/bin/containerd-shim-diffkeeper-v1 \
         -e root/usr/lib/diffkeeper/diffkeeperd -e root/usr/lib/diffkeeper/diffkeeper -e root/usr/lib/diffkeeper/librocksdb.so \
         -e root/usr/lib/diffkeeper/libbpf/libbpf.so.1 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
rm -rf "$work/debian"

install -d -m 0755 "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" packaging/deb/control.in >"$root/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

DIST=${DIST:-dist}; mkdir -p "$DIST"
out=$DIST/diffkeeper_${VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$out" >/dev/null
echo "$out"
