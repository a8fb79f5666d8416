#!/usr/bin/env bash
# make rpm → dist/diffkeeper-<version>.x86_64.rpm, built with rpmbuild (Debian's `rpm` package) from the tree
# packaging/stage.sh lays out.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:?VERSION is required}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
packaging/stage.sh "$work/stage" /usr/lib/systemd/system /usr/share/zsh/site-functions
rpmbuild -bb --quiet --target x86_64 \
  --define "_topdir $work/top" --define "_rpmdir $work/out" --define "_build_name_fmt %%{NAME}-%%{VERSION}.%%{ARCH}.rpm" \
  --define "dk_version $VERSION" --define "dk_stage $work/stage" \
  --define "_binary_payload w3.zstdio" \
  packaging/rpm/diffkeeper.spec >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
DIST=${DIST:-dist}; mkdir -p "$DIST"
out=$DIST/diffkeeper-${VERSION}.x86_64.rpm
mv "$work/out/diffkeeper-${VERSION}.x86_64.rpm" "$out"
echo "$out"
