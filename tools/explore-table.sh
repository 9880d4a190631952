#!/usr/bin/env bash
# The README table of the explore catalogue ("Finding races: the explore catalogue"): for each
# scenarios/explore/*.json and strategy, the median number of schedules and the median wall time
# to the first failure on v5.15 over 10 searches (search k = 1..10), one core.
#   tools/explore-table.sh [BUILD_DIR (default build/rel, a Release build)] [SEARCHES (10)]
#
# Strategy `random`: the in-process driver of tests/unit/test_explore_catalogue.cpp
# ([.explore-table]): search k runs the seeded scheduler with seeds k*10^9+1, k*10^9+2, ... (each
# seed one random schedule, as `bpftsim run S --seed N`), the scenario loaded once, no trace kept,
# until the first failing schedule (budget 10^6).
#
# TODO(pct, dfs): once `bpftsim explore` (issue 9, tools/cmd_explore.cpp) is on main, add rows for
# `bpftsim explore S --strategy pct|dfs --seed k --schedules N` from its summary (schedules run to
# the first failure and wall time), and take the random rows from it too so that all three
# strategies are measured the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/rel}
searches=${2:-10}
unit="$build/tests/bpftsim_unit"
[ -x "$unit" ] || { echo "explore-table: $unit not built (cmake --build $build --target bpftsim_unit)" >&2; exit 2; }

echo "| scenario | strategy | median schedules to first failure | median wall time | min..max schedules | searches that found it | schedules/s |"
echo "|---|---|---:|---:|---:|---:|---:|"
BPFTSIM_EXPLORE_SEARCHES=$searches "$unit" "[.explore-table]" 2>&1 | grep '^| '
