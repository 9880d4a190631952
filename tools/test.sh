#!/usr/bin/env bash
# The whole test suite: builds what it needs (Release, and Debug with ASan+UBSan), runs every
# test in both (unit and scenario tests, ISA conformance, golden traces, properties, and
# `bpftsim check scenarios/`), then checks that both builds produce byte-identical traces in all
# three formats for every scenario.
# Packages must be installed (tools/install-deps.sh; .ci/run does that first).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${BPFTSIM_JOBS:-$(nproc)}

build() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DBPFTSIM_BENCHMARKS=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

build build/release -DCMAKE_BUILD_TYPE=Release
build build/asan -DCMAKE_BUILD_TYPE=Debug -DBPFTSIM_SANITIZE=ON

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for dir in build/release build/asan; do
  echo "== ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" || status=1
done

echo "== determinism across Release and Debug+ASan builds"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
compared=0
while IFS= read -r scenario; do
  for fmt in text jsonl perfetto; do
    for b in release asan; do
      "build/$b/tools/bpftsim" run "$scenario" --trace "$out/$b.$fmt" --trace-format "$fmt" \
        --run-dir "$out" >/dev/null 2>&1 || true
    done
    if ! cmp -s "$out/release.$fmt" "$out/asan.$fmt"; then
      echo "$scenario: $fmt trace differs between Release and Debug+ASan builds"
      status=1
    fi
    compared=$((compared + 1))
  done
done < <(find scenarios -name '*.json' ! -name '*.schema.json' ! -name '*.run.json' | sort)
echo "scenarios: compared $compared traces (text, jsonl, perfetto) across the two builds"
exit $status
