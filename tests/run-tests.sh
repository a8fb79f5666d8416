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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
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
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
