#!/usr/bin/env bash
# Helpers shared by the shim benchmark: a busybox OCI image built from Debian's busybox-static, and a private
# containerd (own root, state, sockets and config under a temp dir) so nothing touches a system containerd.
# Source it; every function expects `set -euo pipefail` semantics from the caller.

DK_IMAGE=docker.io/library/busybox:latest
DK_NS=dk

# make_busybox_oci OUT.tar — a one-layer OCI image archive: bin/busybox plus one symlink per applet,
# config Env PATH + Cmd sh, index.json, oci-layout, blobs/sha256/*.
make_busybox_oci() {
  local out=$1 work
  work=$(mktemp -d /tmp/dk-oci-XXXX)
  mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/etc" "$work/oci/blobs/sha256"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"
  done
  chmod 1777 "$work/rootfs/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" .
  local layer_digest layer_size cfg cfg_digest man man_digest
  layer_digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$work/layer.tar")
  mv "$work/layer.tar" "$work/oci/blobs/sha256/$layer_digest"
  cfg='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$layer_digest'"]}}'
  printf %s "$cfg" >"$work/cfg"
  cfg_digest=$(sha256sum "$work/cfg" | cut -d' ' -f1)
  mv "$work/cfg" "$work/oci/blobs/sha256/$cfg_digest"
  man='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$cfg_digest'","size":'${#cfg}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'$layer_digest'","size":'$layer_size'}]}'
  printf %s "$man" >"$work/man"
  man_digest=$(sha256sum "$work/man" | cut -d' ' -f1)
  mv "$work/man" "$work/oci/blobs/sha256/$man_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$man_digest" "${#man}" "$DK_IMAGE" >"$work/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
  tar --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$out" .
  rm -rf "$work"
}

# start_private_containerd ROOT BINDIR — writes ROOT/config.toml, starts containerd with PATH=BINDIR:$PATH,
# waits for its socket. Sets DK_SOCK and DK_CONTAINERD_PID.
start_private_containerd() {
  local root=$1 bindir=$2
  mkdir -p "$root/root" "$root/state"
  DK_SOCK=$root/c.sock
  cat >"$root/config.toml" <<TOML
version = 2
root = "$root/root"
state = "$root/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$DK_SOCK"
[ttrpc]
  address = "$DK_SOCK.ttrpc"
[debug]
  level = "info"
TOML
  PATH="$bindir:$PATH" setsid containerd --config "$root/config.toml" >"$root/containerd.log" 2>&1 </dev/null &
  DK_CONTAINERD_PID=$!
  local i
  for i in $(seq 100); do
    if ctr -a "$DK_SOCK" version >/dev/null 2>&1; then return 0; fi
    kill -0 "$DK_CONTAINERD_PID" 2>/dev/null || { cat "$root/containerd.log" >&2; return 1; }
    sleep 0.1
  done
  echo "containerd did not come up; see $root/containerd.log" >&2
  return 1
}
