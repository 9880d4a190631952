#!/usr/bin/env bash
# The documented long run of the RapidCheck properties (issue 7): every property of bpftsim_prop
# over SEEDS seeds of CASES cases each (default 20 x 5000 = 100,000 cases per property), at the
# lowest CPU priority. Prints one line per seed and a total; exit 1 at the first failing seed
# (its output, with rapidcheck's reproduce line, is kept in the log directory).
#
#   tools/prop-long-run.sh [BUILD_DIR] [CASES] [SEEDS]     (BUILD_DIR default build/release)
set -euo pipefail
build=${1:-build/release}
cases=${2:-5000}
seeds=${3:-20}
prop="$build/tests/bpftsim_prop"
[ -x "$prop" ] || { echo "prop-long-run: $prop not built" >&2; exit 2; }
logs=$(mktemp -d "${TMPDIR:-/tmp}/bpftsim-prop-long.XXXXXX")
start=$(date +%s)
for seed in $(seq 1 "$seeds"); do
  t0=$(date +%s)
  if ! RC_PARAMS="max_success=$cases seed=$seed" nice -n 19 "$prop" >"$logs/seed-$seed.log" 2>&1; then
    echo "seed $seed: FAILED (log: $logs/seed-$seed.log)"
    grep -E "RC_PARAMS|internal error|Falsifiable" "$logs/seed-$seed.log" | head -5 || true
    exit 1
  fi
  echo "seed $seed: $cases cases x every property passed in $(($(date +%s) - t0)) s"
done
echo "prop-long-run: $((cases * seeds)) cases per property, all passed in" \
  "$(($(date +%s) - start)) s; logs in $logs"
