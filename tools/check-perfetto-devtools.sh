#!/usr/bin/env bash
# Loads the Perfetto rendering of every scenario's trace (the runs the golden traces record, at
# each scenario's own seed) into the trace engine of Chromium's DevTools Performance panel, the npm
# package @paulirish/trace_engine pinned by tools/trace-check/package-lock.json, offline under
# Node.js: no warning (no "Begin/End events mismatch") and every slice present
# (tools/trace-check/check-perfetto.mjs). The package is installed once into BUILD_DIR/trace-check
# from the npm registry (the quick start's Node.js and npm; tools/install-deps.sh).
#
#   tools/check-perfetto-devtools.sh [BUILD_DIR]      # default build/release
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
tool="$build/tools/bpftsim"
work="$build/trace-check"
mkdir -p "$work"
cp tools/trace-check/package.json tools/trace-check/package-lock.json \
  tools/trace-check/check-perfetto.mjs "$work/"
if [ ! -f "$work/node_modules/@paulirish/trace_engine/package.json" ]; then
  npm ci --prefix "$work" --no-audit --no-fund --loglevel=error
fi
traces="$work/traces"
rm -rf "$traces"
mkdir -p "$traces"
count=0
while IFS= read -r scenario; do
  name=$(basename "$scenario" .json)
  # Every scenario at its own seed, as the golden test runs it (a failing one still writes its
  # trace; its exit code is the golden test's business).
  "$tool" run "$scenario" --trace "$traces/$name.json" --trace-format perfetto \
    --run-dir "$work/runs" >/dev/null 2>&1 || true
  [ -f "$traces/$name.json" ] || { echo "no trace written for $scenario" >&2; exit 1; }
  count=$((count + 1))
done < <(find scenarios -name '*.json' ! -name 'scenario.schema.json' | sort)
echo "check-perfetto-devtools: $count traces"
if node "$work/check-perfetto.mjs" "$traces"/*.json >"$work/result.txt"; then
  tail -n 3 "$work/result.txt"
  echo "check-perfetto-devtools: every trace loads with every slice and no warning"
else
  grep '^FAIL' "$work/result.txt" >&2
  exit 1
fi
