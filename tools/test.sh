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
# One scenario: its three traces from each build, compared; a difference is printed and leaves a
# mark file. Scenarios run $jobs at a time, each in a directory of its own.
compare_scenario() {
  local scenario=$1 dir
  dir=$(mktemp -d "$out/s.XXXXXX")
  for fmt in text jsonl perfetto; do
    for b in release asan; do
      "build/$b/tools/bpftsim" run "$scenario" --trace "$dir/$b.$fmt" --trace-format "$fmt" \
        --run-dir "$dir" >/dev/null 2>&1 || true
    done
    if ! cmp -s "$dir/release.$fmt" "$dir/asan.$fmt"; then
      echo "$scenario: $fmt trace differs between the g++ Release and clang++ Debug+ASan builds"
      touch "$out/differs"
    fi
  done
  rm -rf "$dir"
}
export -f compare_scenario
export out
find scenarios -name '*.json' ! -name '*.schema.json' ! -name '*.run.json' | sort >"$out/list"
xargs -d '\n' -r -n 1 -P "$jobs" bash -c 'compare_scenario "$1"' _ <"$out/list"
compared=$(($(wc -l <"$out/list") * 3))
[ ! -e "$out/differs" ] || status=1
echo "scenarios: compared $compared traces (text, jsonl, perfetto) across the two compilers"
exit $status
