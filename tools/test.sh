#!/usr/bin/env bash
# The whole test suite: builds what it needs with two compilers (Release with g++, and Debug with
# ASan+UBSan and the libFuzzer harnesses with clang++), runs every test in both (unit and scenario
# tests, ISA conformance, golden traces, properties, `bpftsim check scenarios/`, and in the clang
# build the fuzz smoke runs of tests/fuzz), then checks that both builds produce byte-identical
# traces in all three formats for every scenario: a miscompile by either compiler
# shows as a difference.
# Packages must be installed (tools/install-deps.sh; .ci/run does that first).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${BPFTSIM_JOBS:-$(nproc)}

build() {  # dir, C compiler, C++ compiler, extra cmake args...
  local dir=$1 cc=$2 cxx=$3
  shift 3
  CC=$cc CXX=$cxx cmake -S . -B "$dir" -G Ninja -DBPFTSIM_BENCHMARKS=OFF \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

build build/release gcc g++ -DCMAKE_BUILD_TYPE=Release
# Line tables are all the sanitizer reports need (file:line in every frame); full debug info
# would double this build's object files and its time.
build build/asan clang clang++ -DCMAKE_BUILD_TYPE=Debug -DBPFTSIM_SANITIZE=ON -DBPFTSIM_FUZZ=ON \
  -DCMAKE_C_FLAGS_DEBUG=-gline-tables-only -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for dir in build/release build/asan; do
  echo "== ctest in $dir"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" || status=1
done

echo "== determinism across the g++ Release and clang++ Debug+ASan builds"
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
      echo "$scenario: $fmt trace differs between the g++ Release and clang++ Debug+ASan builds"
      status=1
    fi
    compared=$((compared + 1))
  done
done < <(find scenarios -name '*.json' ! -name '*.schema.json' ! -name '*.run.json' | sort)
echo "scenarios: compared $compared traces (text, jsonl, perfetto) across the two compilers"
exit $status
