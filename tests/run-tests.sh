#!/usr/bin/env bash
# Runs the xunit test projects (already built by `make build`) and prints one closing line:
#   "N passed, N failed, N skipped"
# Usage: tests/run-tests.sh [--unit|--integration]
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-Release}
mode=${1:-all}

unit=(tests/DiffKeeper.Ttrpc.Tests tests/DiffKeeper.Shim.Tests tests/DiffKeeper.Store.Tests tests/DiffKeeper.Cli.Tests tests/DiffKeeper.Bpf.Tests tests/DiffKeeper.Report.Tests)
integration=(tests/DiffKeeper.Shim.IntegrationTests tests/DiffKeeper.Recorder.Tests tests/DiffKeeper.Record.Tests tests/DiffKeeper.Node.Tests tests/DiffKeeper.Oci.Tests)
case "$mode" in
  --unit) projects=("${unit[@]}") ;;
  --integration) projects=("${integration[@]}") ;;
  *) projects=("${unit[@]}" "${integration[@]}") ;;
esac

passed=0; failed=0; skipped=0; rc=0

# Every `dotnet` command (the SDK 10 CLI itself: `dotnet --info` is enough) leaves two empty mode-0700 directories
# with 6-character random names in $TMPDIR, and never removes them (dotnet/sdk#35353). The suite runs dotnet many
# times (here and in tests that publish), so all of it gets a scratch TMPDIR that goes at the end. It is short
# (/tmp/dk-tests-XXXXXX): unix socket paths under it must stay below 108 bytes.
scratch=$(mktemp -d /tmp/dk-tests-XXXXXX)
# Entries we name ourselves (dk-*, diffkeeper-*) in /tmp before the run: a new one left after it is a leak (of a test
# that names /tmp itself). Other suites' scratch directories (dk-tests-*) are not counted: suites may run side by side.
ours_in_tmp() { find /tmp -mindepth 1 -maxdepth 1 \( -name 'dk-*' -o -name 'diffkeeper-*' \) ! -name 'dk-tests-*' 2>/dev/null | sort; }
tmp_before=$(ours_in_tmp)
others_before=$(find /tmp -mindepth 1 -maxdepth 1 -name 'dk-tests-*' ! -path "$scratch" 2>/dev/null)
log=$scratch/log
# What the suite left in its scratch TMPDIR besides the SDK's 6-character directories is a leak of ours.
scratch_leftovers() { find "$scratch" -mindepth 1 -maxdepth 1 ! -name log -regextype posix-extended ! -regex '.*/[A-Za-z0-9]{6}' 2>/dev/null; }
cleanup() {
  local left
  left=$(scratch_leftovers)
  [ -n "$left" ] && { echo "!!! left in the scratch TMPDIR $scratch:"; echo "$left"; }
  rm -rf --one-file-system "$scratch"
}
trap cleanup EXIT
export TMPDIR=$scratch
# No MSBuild node may outlive the run with its TMPDIR pointing at the removed scratch (and serve someone's next build).
export MSBUILDDISABLENODEREUSE=1
for p in "${projects[@]}"; do
  echo "=== $p"
  dotnet test "$p" -c "$CONFIG" --no-build --nologo \
      2>&1 | tee "$log"
  prc=${PIPESTATUS[0]}
  # The VSTest summary line: "Failed!  - Failed: 1, Passed: 9, Skipped: 0, Total: 10, ..."
  line=$(grep -E '(Passed|Failed)!  ?- Failed: ' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "!!! $p: no test summary (build or runner failure, exit $prc)"; failed=$((failed+1)); rc=1; continue
  fi
  f=$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$line")
  s=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$line")
  k=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$line")
  passed=$((passed+s)); failed=$((failed+f)); skipped=$((skipped+k))
  [ "$prc" -ne 0 ] && rc=1
done
# Tests that name a path in /tmp (not $TMPDIR) must remove it. Only our names count, and only when no other suite
# (its dk-tests-* scratch) ran beside this one: then a new dk-* entry may be the other suite's, and is only reported.
leaked=$(comm -13 <(echo "$tmp_before") <(ours_in_tmp))
# Another user's run in progress removes its own soon: count only what is still there a little later.
if [ -n "$leaked" ]; then sleep "${DK_TMP_CHECK_GRACE:-30}"; leaked=$(comm -12 <(echo "$leaked") <(ours_in_tmp)); fi
if [ -n "$leaked" ]; then
  echo "!!! the suite left new entries in /tmp:"; echo "$leaked"
  others=$(find /tmp -mindepth 1 -maxdepth 1 -name 'dk-tests-*' ! -path "$scratch" 2>/dev/null)
  if [ -z "$others$others_before" ]; then rc=1; else echo "(another suite ran beside this one: not counted as a failure)"; fi
fi
[ -n "$(scratch_leftovers)" ] && rc=1

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
