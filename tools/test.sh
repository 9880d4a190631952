#!/usr/bin/env bash
# The whole test suite: builds what it needs (Release, and Debug with ASan+UBSan), runs every
# test in both, then checks that both builds produce byte-identical traces for the same seeds.
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
r=$(build/release/tools/bpftsim races --digest-only)
d=$(build/asan/tools/bpftsim races --digest-only)
if [ "$r" = "$d" ]; then
  echo "identical trace digests: $(echo "$r" | wc -l) runs"
else
  echo "trace digests differ between Release and Debug builds:"
  diff <(echo "$r") <(echo "$d") || true
  status=1
fi
exit $status
