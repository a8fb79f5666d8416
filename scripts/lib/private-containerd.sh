# Shell helpers for a private containerd (own root, state, socket, config; CRI off) and a busybox image built
# from Debian's busybox-static. Sourced by the demo and the benchmarks; they never touch the system containerd.
#
#   dk_containerd_start DIR     starts containerd under DIR, sets DK_SOCK and DK_CONTAINERD_PID
#   dk_containerd_stop          stops it (by pid) and unmounts anything left under DIR
#   dk_busybox_image            builds an OCI archive from /bin/busybox and imports it as $DK_IMAGE into $DK_NS;
#                               executables listed in DK_IMAGE_EXTRA_BIN (space-separated paths) go to /bin too
#                               (DK_IMAGE_CMD: the config's Cmd as a JSON array, default ["sh"]; a CRI sandbox image
#                               needs one that keeps running, e.g. ["sleep","1000000"])
#   dkctr ARGS…                 ctr against the private instance, namespace $DK_NS

DK_NS=${DK_NS:-dk}
DK_IMAGE=${DK_IMAGE:-docker.io/library/dk-busybox:latest}

dkctr() { ctr -a "$DK_SOCK" -n "$DK_NS" "$@"; }

dk_containerd_start() {
  DK_DIR=$1
  mkdir -p "$DK_DIR/root" "$DK_DIR/state" "$DK_DIR/bin"
  DK_SOCK=$DK_DIR/containerd.sock
  cat >"$DK_DIR/config.toml" <<TOML
version = 2
root = "$DK_DIR/root"
state = "$DK_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$DK_SOCK"
[ttrpc]
  address = "$DK_SOCK.ttrpc"
TOML
  # The shim under test is found on containerd's PATH (the stock runc shim is on the system PATH).
  if [ -n "${DIFFKEEPER_BIN_DIR:-}" ]; then
    ln -sf "$(readlink -f "$DIFFKEEPER_BIN_DIR/containerd-shim-diffkeeper-v1")" "$DK_DIR/bin/containerd-shim-diffkeeper-v1"
  fi
  PATH="$DK_DIR/bin:$PATH" setsid containerd --config "$DK_DIR/config.toml" >"$DK_DIR/containerd.log" 2>&1 </dev/null &
  DK_CONTAINERD_PID=$!
  for _ in $(seq 1 100); do
    ctr -a "$DK_SOCK" version >/dev/null 2>&1 && return 0
    kill -0 "$DK_CONTAINERD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not come up; its log:" >&2; tail -20 "$DK_DIR/containerd.log" >&2
  return 1
}

dk_containerd_stop() {
  [ -n "${DK_DIR:-}" ] && [ -d "$DK_DIR" ] || return 0
  set +e   # best effort: a cleanup step that fails must not skip the others
  local ids=""
  if [ -n "${DK_CONTAINERD_PID:-}" ] && kill -0 "$DK_CONTAINERD_PID" 2>/dev/null; then
    ids=$(timeout 10 ctr -a "$DK_SOCK" -n "$DK_NS" container ls -q 2>/dev/null)
    for t in $(timeout 10 ctr -a "$DK_SOCK" -n "$DK_NS" task ls -q 2>/dev/null); do
      timeout 10 ctr -a "$DK_SOCK" -n "$DK_NS" task kill -a -s SIGKILL "$t" >/dev/null 2>&1
      timeout 15 ctr -a "$DK_SOCK" -n "$DK_NS" task rm -f "$t" >/dev/null 2>&1
    done
    for c in $ids; do timeout 10 ctr -a "$DK_SOCK" -n "$DK_NS" container rm "$c" >/dev/null 2>&1; done
    kill "$DK_CONTAINERD_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$DK_CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DK_CONTAINERD_PID" 2>/dev/null
  fi
  # Shims of this containerd carry TTRPC_ADDRESS=$DK_DIR/…: find them by that marker, never by name.
  local envf pid
  for envf in /proc/[0-9]*/environ; do
    pid=${envf#/proc/}; pid=${pid%/environ}
    [ "$pid" = $$ ] && continue
    if { tr '\0' '\n' <"$envf"; } 2>/dev/null | grep -qx "TTRPC_ADDRESS=$DK_DIR/.*"; then kill -9 "$pid" 2>/dev/null; fi
  done
  for c in $ids; do
    [ -d "/run/containerd/runc/$DK_NS/$c" ] && runc --root "/run/containerd/runc/$DK_NS" delete --force "$c" >/dev/null 2>&1
  done
  # Anything still mounted below our directory (deepest first).
  awk -v d="$DK_DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$DK_DIR"
}

dk_busybox_image() {
  local w=$DK_DIR/image
  rm -rf "$w"; mkdir -p "$w/rootfs/bin" "$w/rootfs/tmp" "$w/rootfs/etc" "$w/rootfs/proc" "$w/rootfs/sys" "$w/rootfs/dev" "$w/oci/blobs/sha256"
  cp /bin/busybox "$w/rootfs/bin/busybox"
  for a in $("$w/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$w/rootfs/bin/$a"; done
  local extra
  for extra in ${DK_IMAGE_EXTRA_BIN:-}; do rm -f "$w/rootfs/bin/$(basename "$extra")"; cp "$extra" "$w/rootfs/bin/"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$w/rootfs/etc/passwd"
  tar -C "$w/rootfs" --numeric-owner --owner=0 --group=0 --sort=name -cf "$w/layer.tar" .
  local ld; ld=$(sha256sum "$w/layer.tar" | cut -d' ' -f1); local ls; ls=$(stat -c %s "$w/layer.tar")
  mv "$w/layer.tar" "$w/oci/blobs/sha256/$ld"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "${DK_IMAGE_CMD:-[\"sh\"]}" "$ld" >"$w/config.json"
  local cd; cd=$(sha256sum "$w/config.json" | cut -d' ' -f1); local cs; cs=$(stat -c %s "$w/config.json")
  mv "$w/config.json" "$w/oci/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" >"$w/manifest.json"
  local md; md=$(sha256sum "$w/manifest.json" | cut -d' ' -f1); local ms; ms=$(stat -c %s "$w/manifest.json")
  mv "$w/manifest.json" "$w/oci/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$DK_IMAGE" >"$w/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
  tar -C "$w/oci" -cf "$w/busybox-oci.tar" .
  timeout 60 ctr -a "$DK_SOCK" -n "$DK_NS" image import "$w/busybox-oci.tar" >/dev/null
  rm -rf "$w"
}
