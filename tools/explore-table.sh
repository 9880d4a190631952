#!/usr/bin/env bash
# The README table of the explore catalogue ("Finding races: the explore catalogue"): for each
# scenarios/explore/*.json and strategy (random, pct, dfs), the median number of schedules and the
# median wall time to the first failure on v5.15 over SEARCHES searches (`bpftsim explore S
# --strategy X --seed k`, k = 1..SEARCHES, no shrinking, one thread, at most TIME_S seconds each),
# from each search's --summary JSON.
#   tools/explore-table.sh [BUILD_DIR (default build/release)] [SEARCHES (10)] [TIME_S (10)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
searches=${2:-10}
time_s=${3:-10}
tool="$build/tools/bpftsim"
[ -x "$tool" ] || { echo "explore-table: $tool not built" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for scenario in scenarios/explore/*.json; do
  for strategy in random pct dfs; do
    for k in $(seq 1 "$searches"); do
      "$tool" explore "$scenario" --strategy "$strategy" --seed "$k" --no-shrink --time "$time_s" \
        --summary "$work/$(basename "$scenario" .json).$strategy.$k.json" --run-dir "$work/runs" \
        >/dev/null 2>&1 || true
    done
  done
done
python3 - "$work" "$searches" "$time_s" <<'PY'
import glob, json, os, statistics, sys
work, searches, time_s = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("| scenario | strategy | median schedules to first failure | median wall time | min..max schedules | searches that found it | schedules/s |")
print("|---|---|---:|---:|---:|---:|---:|")
rows = {}
for f in sorted(glob.glob(os.path.join(work, "*.json"))):
    base = os.path.basename(f)[:-5]
    name, strategy, k = base.rsplit(".", 2)
    s = json.load(open(f))
    rows.setdefault((name, strategy), []).append(s)
order = {"random": 0, "pct": 1, "dfs": 2}
for (name, strategy) in sorted(rows, key=lambda r: (r[0], order[r[1]])):
    runs = rows[(name, strategy)]
    found = [s for s in runs if s["failures"] > 0]
    rate = statistics.median(s["timing"]["schedules_per_second"] for s in runs)
    if not found:
        n = statistics.median(s["schedules"] for s in runs)
        complete = all(s.get("complete") for s in runs)
        why = "whole tree" if complete else f"{time_s} s"
        print(f"| {name} | {strategy} | none in {int(n)} ({why}) | - | - | 0/{len(runs)} | {rate:.0f} |")
        continue
    sched = [s["schedules"] for s in found]
    secs = [s["timing"]["seconds"] for s in found]
    med_t = statistics.median(secs)
    t = f"{med_t * 1000:.2f} ms" if med_t < 1 else f"{med_t:.2f} s"
    print(f"| {name} | {strategy} | {statistics.median(sched):g} | {t} | {min(sched)}..{max(sched)} | {len(found)}/{len(runs)} | {rate:.0f} |")
PY
