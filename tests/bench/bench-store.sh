#!/usr/bin/env bash
# Storage benchmark: diffkeeper's store against restic, borg (zstd,3) and casync, same data, same run.
#
#   DIFFKEEPER_BIN_DIR=artifacts/bin tests/bench/bench-store.sh      (what `make bench-store` runs)
#   BENCH_SCALE=small   quick smoke run (64 MiB tree, 10 edits, 20 log versions, ~1k versions in workload 5)
#   BENCH_TOOLS="restic borg casync"   choose the tools (default: all four; diffkeeper is left out when
#                                      $DIFFKEEPER_BIN_DIR/diffkeeper does not exist)
#   BENCH_WORKLOADS="1 5"   run only these workloads (default: 1 3 4 5 6; 1 includes 2 and the full restore)
#   BENCH_W5_PEERS=1    also time workload 5 (one moment's export / one file) with the peers (slow: 90 backups each)
#   BENCH_DIR=/var/tmp  where the workloads and repositories live (must have ~8 GiB free at full scale)
#
# Workloads (generated deterministically by store/gen.py):
#   1  a 1 GiB mixed tree: ingest time and CPU, warm (the tree just read, in the page cache: what the recorder
#      meets at a container's exit) and cold (caches dropped), peak RSS; 2 re-ingest unchanged (s); full restore
#      MB/s (cold cache)
#   3  one 20 MiB binary edited 100 times, ingested after each edit: stored bytes, total time
#   4  an append-only log growing 64 KiB per version for 200 versions: stored bytes
#   5  10,000 versions over 1,000 files: export-one-moment and show-one-file latency (median)
#   6  one 20 MiB file, half incompressible, edited 40 times (scattered small overwrites, a mid-file insertion,
#      an append), ingested after each edit: stored bytes
# Stored bytes = du -sb of the repository after the workload minus its size when empty.
# Every timed run is timed to durability: `sync` before the clock starts and inside the timed span, so a tool
# that leaves its writes dirty in the page cache pays for them itself instead of slowing the next tool's run.
# Workload 5's probes (show one file, export one moment, --version) measure query latency: they are timed without
# the inner sync, which would only measure the dirty pages of every other process on the machine (the export's
# write cost to durability is what workload 1's full restore measures).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
GEN=(python3 "$HERE/store/gen.py")
SCALE=${BENCH_SCALE:-full}
DK=${DIFFKEEPER_BIN_DIR:+$DIFFKEEPER_BIN_DIR/diffkeeper}
TOOLS=${BENCH_TOOLS:-diffkeeper restic borg casync}
WORKLOADS=" ${BENCH_WORKLOADS:-1 3 4 5 6} "

case "$SCALE" in
  full)  W3_EDITS=100; W4_VERSIONS=200; W5_FILES=1000; W5_PER_STEP=100; W5_STEPS=90; W6_EDITS=40 ;;
  small) W3_EDITS=10;  W4_VERSIONS=20;  W5_FILES=100;  W5_PER_STEP=50;  W5_STEPS=19; W6_EDITS=10 ;;
  *) echo "BENCH_SCALE must be full or small" >&2; exit 2 ;;
esac

log() { printf '[bench-store %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# --- prerequisites ----------------------------------------------------------------------------------------
missing=()
for t in $TOOLS; do
  case "$t" in
    restic) command -v restic >/dev/null || missing+=(restic) ;;
    borg)   command -v borg   >/dev/null || missing+=(borgbackup) ;;
    casync) command -v casync >/dev/null || missing+=(casync) ;;
  esac
done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null
fi
selected=()
for t in $TOOLS; do
  if [ "$t" = diffkeeper ] && { [ -z "$DK" ] || [ ! -x "$DK" ]; }; then
    log "diffkeeper left out: no executable \$DIFFKEEPER_BIN_DIR/diffkeeper (${DK:-unset})"; continue
  fi
  selected+=("$t")
done
[ ${#selected[@]} -gt 0 ] || { log "no tool to measure"; exit 1; }

BASE=${BENCH_DIR:-/var/tmp}
WORK=$(mktemp -d "$BASE/dk-bench-store.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/cache/restic
export BORG_BASE_DIR=$WORK/cache/borg BORG_PASSPHRASE='' BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
       BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

declare -A R   # results: R[tool.metric]=value

# --- measuring --------------------------------------------------------------------------------------------
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# run_timed CMD...: runs CMD (stdout/stderr to $WORK/last.log), sets ELAPSED (seconds, to durability), CPU
# (user+sys seconds of the tool's process tree) and PEAK_KIB. Earlier dirty pages are written before the clock
# starts; the tool's own are written (sync) before it stops.
run_timed() {
  local t0 t1
  sync
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%M %U %S' -o "$WORK/rss" "$@" >"$WORK/last.log" 2>&1; then
    log "FAILED: $*"; tail -n 5 "$WORK/last.log" >&2; return 1
  fi
  [ "${LATENCY_PROBE:-0}" = 1 ] || sync
  t1=$(date +%s%N)
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  read -r PEAK_KIB cpu_user cpu_sys < <(tail -n 1 "$WORK/rss")
  CPU=$(awk -v u="$cpu_user" -v s="$cpu_sys" 'BEGIN{printf "%.2f", u+s}')
}

# warm_cache DIR: reads every file of DIR so that it is in the page cache (as an upper directory a container just
# wrote is); drop_caches is the cold case.
warm_cache() { find "$1" -type f -print0 | xargs -0 -r cat >/dev/null; }

median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a+b}'; }
bytes_of() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }

# --- one adapter per tool: init REPO / ingest REPO SRC TAG STEP / restore REPO SRC TAG STEP OUT ---------------
# STEP is the version number; diffkeeper records it as the moment STEP seconds after the recording's start.
init_repo() {
  local tool=$1 repo=$2
  case "$tool" in
    diffkeeper) mkdir -p "$repo" ;;
    restic) restic -r "$repo" init -q >/dev/null ;;
    borg)   borg init -e none "$repo" ;;
    casync) mkdir -p "$repo/store" "$repo/idx" ;;
  esac
}

ingest() {
  local tool=$1 repo=$2 src=$3 tag=$4 step=$5
  case "$tool" in
    diffkeeper) run_timed "$DK" --store "$repo" -q snapshot "$src" --recording "$tag" --at "${step}s" ;;
    restic) run_timed restic -r "$repo" backup -q --host bench --tag "$tag" "$src" ;;
    borg)   run_timed env -C "$src" borg create --compression zstd,3 "$repo::$tag-$step" . ;;
    casync) run_timed casync make --store="$repo/store" "$repo/idx/$tag-$step.caidx" "$src" ;;
  esac
}

restore() {
  local tool=$1 repo=$2 src=$3 tag=$4 step=$5 out=$6
  case "$tool" in
    diffkeeper) run_timed "$DK" --store "$repo" -q export "$tag" --at "${step}s" --out "$out" ;;
    restic) run_timed restic -r "$repo" restore latest --host bench --tag "$tag" --target "$out" ;;
    borg)   mkdir -p "$out"; run_timed env -C "$out" borg extract "$repo::$tag-$step" ;;
    casync) run_timed casync extract --store="$repo/store" "$repo/idx/$tag-$step.caidx" "$out" ;;
  esac
}

# The restored tree's root (restic nests the absolute source path under the target).
restored_root() {
  local tool=$1 out=$2 src=$3
  if [ "$tool" = restic ]; then echo "$out$src"; else echo "$out"; fi
}

# --- workload 1 + 2 + restore -----------------------------------------------------------------------------
bench_tree() {
  local src=$WORK/w1-src
  log "generating workload 1 ($SCALE)"
  "${GEN[@]}" tree "$src" --scale "$SCALE"
  local src_bytes files
  src_bytes=$(du -sb --apparent-size "$src" | cut -f1)
  files=$(find "$src" -type f | wc -l)
  R[src.w1_bytes]=$src_bytes; R[src.w1_files]=$files
  log "workload 1: $files files, $src_bytes bytes"
  for tool in "${selected[@]}"; do
    local repo=$WORK/repo-$tool-w1 out=$WORK/out-$tool-w1 empty
    # Warm: the tree in the page cache, as the recorder finds an upper directory the container just wrote.
    init_repo "$tool" "$repo"
    warm_cache "$src"
    ingest "$tool" "$repo" "$src" w1 0
    R[$tool.ingest_warm_s]=$ELAPSED; R[$tool.ingest_warm_cpu]=$CPU; local warm_rss=$((PEAK_KIB / 1024))
    rm -rf "$repo"
    # Cold: caches dropped; this repository then serves the re-ingest and the restore.
    init_repo "$tool" "$repo"; empty=$(bytes_of "$repo")
    drop_caches
    ingest "$tool" "$repo" "$src" w1 0
    R[$tool.ingest_s]=$ELAPSED; R[$tool.ingest_cpu]=$CPU
    R[$tool.ingest_rss_mib]=$(( PEAK_KIB / 1024 > warm_rss ? PEAK_KIB / 1024 : warm_rss ))
    R[$tool.ingest_mbs]=$(awk -v b="$src_bytes" -v s="$ELAPSED" 'BEGIN{printf "%.1f", b/1e6/s}')
    ingest "$tool" "$repo" "$src" w1 1
    R[$tool.reingest_s]=$ELAPSED
    R[$tool.w1_stored]=$(( $(bytes_of "$repo") - empty ))
    drop_caches
    restore "$tool" "$repo" "$src" w1 1 "$out"
    R[$tool.restore_mbs]=$(awk -v b="$src_bytes" -v s="$ELAPSED" 'BEGIN{printf "%.1f", b/1e6/s}')
    # A fast restore of the wrong bytes is worth nothing: compare our restored tree with the source (the peers
    # are trusted, and comparing 1 GiB costs several seconds each).
    if [ "$tool" != diffkeeper ]; then
      R[$tool.restore_ok]=trusted
    elif diff -r -q "$src" "$(restored_root "$tool" "$out" "$src")" >"$WORK/diff.log" 2>&1; then
      R[$tool.restore_ok]=yes
    else
      R[$tool.restore_ok]=NO; log "$tool: restored tree differs: $(head -n 3 "$WORK/diff.log")"
    fi
    rm -rf "$out" "$repo"
    log "w1 $tool: ingest warm ${R[$tool.ingest_warm_s]}s (cpu ${R[$tool.ingest_warm_cpu]}s)," \
        "cold ${R[$tool.ingest_s]}s (cpu ${R[$tool.ingest_cpu]}s, ${R[$tool.ingest_mbs]} MB/s, ${R[$tool.ingest_rss_mib]} MiB RSS)," \
        "again ${R[$tool.reingest_s]}s, restore ${R[$tool.restore_mbs]} MB/s (${R[$tool.restore_ok]})"
  done
  rm -rf "$src"
}

# --- workloads 3 and 4: many versions of one file, every tool ingests each version --------------------------
# bench_versions NAME VERSIONS PREPARE_CMD STEP_CMD: PREPARE/STEP are run with the source file path (and step).
bench_versions() {
  local name=$1 versions=$2 file_name=$3; shift 3
  local src=$WORK/$name-src; mkdir -p "$src"
  local -A empty total
  for tool in "${selected[@]}"; do
    init_repo "$tool" "$WORK/repo-$tool-$name"; empty[$tool]=$(bytes_of "$WORK/repo-$tool-$name"); total[$tool]=0
  done
  for ((step = 0; step < versions; step++)); do
    "$@" "$src/$file_name" "$step"
    for tool in "${selected[@]}"; do
      ingest "$tool" "$WORK/repo-$tool-$name" "$src" "$name" "$step"
      total[$tool]=$(add "${total[$tool]}" "$ELAPSED")
    done
  done
  for tool in "${selected[@]}"; do
    R[$tool.${name}_stored]=$(( $(bytes_of "$WORK/repo-$tool-$name") - empty[$tool] ))
    R[$tool.${name}_s]=${total[$tool]}
    rm -rf "$WORK/repo-$tool-$name"
    log "$name $tool: stored ${R[$tool.${name}_stored]} bytes in ${R[$tool.${name}_s]}s"
  done
  rm -rf "$src"
}

w3_step() { if [ "$2" -eq 0 ]; then "${GEN[@]}" w3-init "$1"; else "${GEN[@]}" w3-edit "$1" --step "$2"; fi; }
w4_step() { "${GEN[@]}" w4-append "$1" --step "$2"; }
w6_step() { if [ "$2" -eq 0 ]; then "${GEN[@]}" w6-init "$1"; else "${GEN[@]}" w6-edit "$1" --step "$2"; fi; }

# --- workload 5: latency of one moment / one file in a long recording ----------------------------------------
bench_latency() {
  local full=$WORK/w5-full delta=$WORK/w5-delta
  local tools=()
  for tool in "${selected[@]}"; do
    if [ "$tool" = diffkeeper ] || [ "${BENCH_W5_PEERS:-0}" = 1 ]; then tools+=("$tool"); fi
  done
  [ ${#tools[@]} -gt 0 ] || return 0
  for tool in "${tools[@]}"; do init_repo "$tool" "$WORK/repo-$tool-w5"; done
  log "workload 5: $(( W5_FILES + W5_STEPS * W5_PER_STEP )) versions over $W5_FILES files"
  for ((step = 0; step <= W5_STEPS; step++)); do
    rm -rf "$delta"
    "${GEN[@]}" w5-step "$full" "$delta" --step "$step" --files "$W5_FILES" --per-step "$W5_PER_STEP"
    for tool in "${tools[@]}"; do
      # Every tool gets the whole tree: the files were all created by the container, so an overlay upper layer
      # holds all of them at every step (it is the container's whole change set, and a snapshot records exactly
      # it: a file missing from it is recorded as deleted). Unchanged files are skipped by their fingerprint.
      ingest "$tool" "$WORK/repo-$tool-w5" "$full" w5 "$step"
    done
  done
  local moment=$(( W5_STEPS / 2 )) i
  for tool in "${tools[@]}"; do
    local repo=$WORK/repo-$tool-w5
    : >"$WORK/lat-export"; : >"$WORK/lat-show"; : >"$WORK/cpu-export"; : >"$WORK/cpu-show"; : >"$WORK/lat-cp"
    local LATENCY_PROBE=1
    # The outputs are removed only after the last run: on ext4 a file created right after many were deleted can
    # cost the kernel a scan of the recently deleted inodes (see docs/store.md), which would time the previous
    # run's `rm -rf`, not the export. The floor beside it: `cp -a` of the same tree (the same files and bytes),
    # alternated with the export.
    for i in 1 2 3 4 5; do
      restore "$tool" "$repo" "$full" w5 "$W5_STEPS" "$WORK/w5-out-$i"
      echo "$ELAPSED" >>"$WORK/lat-export"; echo "$CPU" >>"$WORK/cpu-export"
      if [ "$tool" = diffkeeper ]; then run_timed cp -a "$full" "$WORK/w5-cp-$i"; echo "$ELAPSED" >>"$WORK/lat-cp"; fi
    done
    rm -rf "$WORK"/w5-out-* "$WORK"/w5-cp-*
    for i in 1 2 3 4 5 6 7 8 9; do
      local n=$(( (i * 7919) % W5_FILES )) rel
      rel=$(printf 'dir%d/f%04d.txt' $((n % 10)) "$n")
      case "$tool" in
        diffkeeper) run_timed "$DK" --store "$repo" -q show w5 "$rel" --at "$(( (moment + i) % W5_STEPS ))s" ;;
        restic) run_timed restic -r "$repo" dump latest "$full/$rel" ;;
        borg)   run_timed borg extract --stdout "$repo::w5-$W5_STEPS" "$rel" ;;
        casync) continue ;;  # casync has no "one file to stdout"; its column stays empty
      esac
      echo "$ELAPSED" >>"$WORK/lat-show"; echo "$CPU" >>"$WORK/cpu-show"
    done
    LATENCY_PROBE=0
    R[$tool.w5_export_ms]=$(median <"$WORK/lat-export" | awk '{printf "%.0f", $1*1000}')
    R[$tool.w5_export_cpu_ms]=$(median <"$WORK/cpu-export" | awk '{printf "%.0f", $1*1000}')
    [ -s "$WORK/lat-cp" ] && R[$tool.w5_cp_ms]=$(median <"$WORK/lat-cp" | awk '{printf "%.0f", $1*1000}')
    [ -s "$WORK/lat-show" ] && R[$tool.w5_show_ms]=$(median <"$WORK/lat-show" | awk '{printf "%.0f", $1*1000}')
    [ -s "$WORK/cpu-show" ] && R[$tool.w5_show_cpu_ms]=$(median <"$WORK/cpu-show" | awk '{printf "%.0f", $1*1000}')
    log "w5 $tool: export ${R[$tool.w5_export_ms]} ms (cpu ${R[$tool.w5_export_cpu_ms]} ms; cp -a ${R[$tool.w5_cp_ms]:--} ms)," \
        "show ${R[$tool.w5_show_ms]:--} ms (cpu ${R[$tool.w5_show_cpu_ms]:--} ms) (medians)"
    rm -rf "$repo"
  done
  if [[ " ${tools[*]} " == *" diffkeeper "* ]]; then
    # Process start-up is part of every CLI call: show it beside the latencies.
    : >"$WORK/lat-version"
    for i in 1 2 3 4 5; do LATENCY_PROBE=1 run_timed "$DK" --version; echo "$ELAPSED" >>"$WORK/lat-version"; done
    R[diffkeeper.startup_ms]=$(median <"$WORK/lat-version" | awk '{printf "%.0f", $1*1000}')
  fi
  rm -rf "$full" "$delta"
}

# --- report -----------------------------------------------------------------------------------------------
v() { echo "${R[$1]:--}"; }
mb() { local x=${R[$1]:-}; [ -n "$x" ] && awk -v b="$x" 'BEGIN{printf "%.1f MB", b/1e6}' || echo -; }

# ratio LABEL OURS PEER TARGET DIRECTION(le|ge): prints ours/peer against the target ratio.
ratio() {
  local label=$1 ours=${R[$2]:-} peer=${R[$3]:-} target=$4 dir=$5
  if [ -z "$ours" ] || [ -z "$peer" ]; then printf '  %-46s %s\n' "$label" "n/a (not measured)"; return; fi
  awk -v o="$ours" -v p="$peer" -v t="$target" -v d="$dir" -v l="$label" 'BEGIN{
    r = (p == 0) ? 1e9 : o / p; ok = (d == "le") ? (r <= t) : (r >= t)
    printf "  %-46s %7.3fx  target %s %.2fx  %s\n", l, r, (d == "le" ? "<=" : ">="), t, ok ? "MET" : "MISSED" }'
}
absolute() {
  local label=$1 val=${R[$2]:-} target=$3 unit=$4
  if [ -z "$val" ]; then printf '  %-46s %s\n' "$label" "n/a (not measured)"; return; fi
  awk -v v="$val" -v t="$target" -v l="$label" -v u="$unit" 'BEGIN{
    printf "  %-46s %7.0f %s  target <= %d %s  %s\n", l, v, u, t, u, (v <= t) ? "MET" : "MISSED" }'
}

report() {
  echo
  echo "== bench-store ($SCALE scale, $(nproc) cores, $(date -u +%FT%TZ)) =="
  echo "workload 1: ${R[src.w1_files]:-?} files, $(mb src.w1_bytes); workload 3: $W3_EDITS edits of a 20 MiB file;" \
       "workload 4: $W4_VERSIONS x 64 KiB appends; workload 5: $(( W5_FILES + W5_STEPS * W5_PER_STEP )) versions over $W5_FILES files;" \
       "workload 6: $W6_EDITS edits of a 20 MiB half-incompressible file"
  echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min); times are to durability (sync inside the span)"
  printf '%-34s' "metric"; for t in "${selected[@]}"; do printf '%14s' "$t"; done; echo
  row() { local label=$1 key=$2 fmt=${3:-v}; printf '%-34s' "$label"; for t in "${selected[@]}"; do printf '%14s' "$($fmt "$t.$key")"; done; echo; }
  row "w1 ingest, warm (s)" ingest_warm_s
  row "w1 ingest, warm, CPU (s)" ingest_warm_cpu
  row "w1 ingest, cold (s)" ingest_s
  row "w1 ingest, cold, CPU (s)" ingest_cpu
  row "w1 ingest, cold (MB/s)" ingest_mbs
  row "w1 ingest peak RSS (MiB)" ingest_rss_mib
  row "w2 re-ingest unchanged (s)" reingest_s
  row "w1 stored" w1_stored mb
  row "w1 full restore, cold (MB/s)" restore_mbs
  row "w1 restore equals source" restore_ok
  row "w3 stored" w3_stored mb
  row "w3 total ingest time (s)" w3_s
  row "w4 stored" w4_stored mb
  row "w4 total ingest time (s)" w4_s
  row "w6 stored" w6_stored mb
  row "w6 total ingest time (s)" w6_s
  row "w5 export one moment (ms)" w5_export_ms
  row "w5 export one moment, CPU (ms)" w5_export_cpu_ms
  row "w5 cp -a of that tree (ms, floor)" w5_cp_ms
  row "w5 show one file (ms)" w5_show_ms
  row "w5 show one file, CPU (ms)" w5_show_cpu_ms
  row "CLI start-up, --version (ms)" startup_ms
  echo
  echo "targets (diffkeeper vs peer, same run):"
  ratio "w1 ingest time vs restic, warm" diffkeeper.ingest_warm_s restic.ingest_warm_s 0.5 le
  ratio "w1 ingest time vs restic, cold" diffkeeper.ingest_s restic.ingest_s 0.5 le
  ratio "w2 re-ingest time vs borg" diffkeeper.reingest_s borg.reingest_s 0.2 le
  ratio "w3 stored bytes vs casync" diffkeeper.w3_stored casync.w3_stored 0.3 le
  ratio "w4 stored bytes vs casync" diffkeeper.w4_stored casync.w4_stored 0.5 le
  ratio "w6 stored bytes vs casync" diffkeeper.w6_stored casync.w6_stored 0.5 le
  ratio "w1 full export speed vs casync" diffkeeper.restore_mbs casync.restore_mbs 1.5 ge
  absolute "w5 export one moment" diffkeeper.w5_export_ms 300 ms
  absolute "w5 show one file" diffkeeper.w5_show_ms 20 ms
  absolute "w1 ingest peak RSS" diffkeeper.ingest_rss_mib 150 MiB
}

started=$(date +%s)
log "tools: ${selected[*]}; scale $SCALE; work dir $WORK"
wanted() { [[ "$WORKLOADS" == *" $1 "* ]]; }
if wanted 1; then bench_tree; fi
if wanted 3; then log "workload 3: $W3_EDITS edits"; bench_versions w3 $((W3_EDITS + 1)) blob.bin w3_step; fi
if wanted 4; then log "workload 4: $W4_VERSIONS versions"; bench_versions w4 "$W4_VERSIONS" app.log w4_step; fi
if wanted 6; then log "workload 6: $W6_EDITS edits"; bench_versions w6 $((W6_EDITS + 1)) data.bin w6_step; fi
if wanted 5; then bench_latency; fi
report
log "done in $(( $(date +%s) - started ))s"
