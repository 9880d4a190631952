#!/usr/bin/env bash
# The explore catalogue on the profiles with the fixes: for each scenarios/explore/*.json that a
# fix closes (its "closed_by"), RUNS random schedules (default 10^5: seeds 1..RUNS) on the
# profile of that fix, in-process ([.explore-measure] of bpftsim_unit), printing the outcome
# counts; the README's "Finding races" section records the figures. Scenarios no fix closes
# (4.1, 4.12 ABBA) are skipped. Exit 1 when any schedule fails.
#   tools/explore-fixed-check.sh [BUILD_DIR (default build/rel)] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/rel}
runs=${2:-100000}
out=$(BPFTSIM_EXPLORE_PROFILE=fixed BPFTSIM_EXPLORE_RUNS=$runs \
  "$build/tests/bpftsim_unit" "[.explore-measure]" 2>&1 | grep -v '^===\|^test cases\|^assertions\|^Filters\|^$')
echo "$out"
if echo "$out" | grep -q ' [1-9][0-9]* failing'; then
  echo "FAIL: a schedule failed on the profile with the fix"
  exit 1
fi
echo "OK: no schedule failed on the profiles with the fixes ($runs each)"
