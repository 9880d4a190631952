#!/usr/bin/env bash
# Regenerates traces/replay/: for every unscripted race of scenarios/explore/, `bpftsim explore`
# (random strategy, seed 1, on the seed profile) finds a failing schedule and shrinks it; the shrunk
# scenario and its run file are kept as traces/replay/<race>.json and <race>.run.json, made
# relocatable (object paths relative to traces/replay/, the run file's scenario relative to the
# run file, its hash recomputed). `bpftsim replay traces/replay/<race>.run.json` replays the race
# exactly; the [replay-files] test checks every one. Rerun after a change that alters traces
# (as tools/update-golden.sh is) and review the diff.
#
#   tools/update-replays.sh [BUILD_DIR]      # default build/release
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
tool="$(pwd)/$build/tools/bpftsim"
out=traces/replay
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
rm -f "$out"/*.json
for scenario in scenarios/explore/*.json; do
  race=$(basename "$scenario" .json)
  (cd "$work" && "$tool" explore "$OLDPWD/$scenario" --strategy random --seed 1 \
    --schedules 5000 >"$work/$race.log" 2>&1) || true
  shrunk=$(find "$work/bpftsim-runs" -name "*.shrunk.json" -path "*explore-$race.*" | sort | head -1)
  if [ -z "$shrunk" ]; then
    echo "update-replays: explore found no failure for $scenario" >&2
    cat "$work/$race.log" >&2
    exit 1
  fi
  python3 - "$shrunk" "${shrunk%.json}.run.json" "$out" "$race" "$(pwd)" <<'EOF'
import json, os, sys
shrunk, runfile, out, race, root = sys.argv[1:]
sc = json.load(open(shrunk))
sc["description"] = sc["description"].replace(root + "/", "")
for o in sc["objects"]:
    o["path"] = os.path.relpath(o["path"], os.path.join(root, out))
text = json.dumps(sc, indent=2) + "\n"
h = 0xcbf29ce484222325
for b in text.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
open(os.path.join(out, race + ".json"), "w").write(text)
rf = json.load(open(runfile))
rf["scenario"] = race + ".json"
rf.pop("cwd", None)
rf["scenario_hash"] = "fnv1a64:%016x" % h
open(os.path.join(out, race + ".run.json"), "w").write(json.dumps(rf, indent=2) + "\n")
EOF
  echo "update-replays: $out/$race.run.json"
done
