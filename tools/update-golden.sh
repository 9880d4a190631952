#!/usr/bin/env bash
# Regenerates traces/golden/<scenario name>.txt for every scenario below scenarios/: the text
# trace of `bpftsim run SCENARIO --trace FILE --trace-format text` at the scenario's own seed.
# The golden test (tests/unit/test_golden.cpp, tag [golden]) does the writing, so the files are
# exactly what it later compares against. Builds build/release first unless BUILD_DIR names an
# existing build directory. Review the resulting diff of traces/golden/ like code.
#
#   tools/update-golden.sh                 # build/release
#   BUILD_DIR=build-lib tools/update-golden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/release}
jobs=${BPFTSIM_JOBS:-$(nproc)}
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPFTSIM_BENCHMARKS=OFF >/dev/null
fi
cmake --build "$build" -j "$jobs" --target bpftsim bpftsim_unit bpftsim_progs
rm -f traces/golden/*.txt
BPFTSIM_UPDATE_GOLDEN=1 "$build/tests/bpftsim_unit" "[golden]"
echo "traces/golden: $(ls traces/golden/*.txt | wc -l) golden traces"
git status --short traces/golden | head -20 || true
