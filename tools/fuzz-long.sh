#!/usr/bin/env bash
# The long fuzzing run (README "Fuzzing"): builds the libFuzzer harnesses (clang++,
# RelWithDebInfo with ASan+UBSan, BPFTSIM_FUZZ=ON: optimized, several times the executions per
# second of tools/test.sh's Debug build/asan) in build/fuzz (or $BPFTSIM_FUZZ_BUILD) and runs
# each for a time or a number of executions, at low priority, keeping its corpus in
# <build>/long/<harness>/corpus between runs.
#
#   tools/fuzz-long.sh [-t SECONDS | -n RUNS] [HARNESS...]
#     -t SECONDS   per harness (default 3600)
#     -n RUNS      executions per harness instead (e.g. -n 10000000)
#     HARNESS      scenario elf vm runfile model (default: all, one after the other)
#   BPFTSIM_FUZZ_FLAGS   extra libFuzzer flags (e.g. "-jobs=2 -workers=2")
#
# Prints libFuzzer's final statistics per harness (stat::number_of_executed_units is the number
# of executions). Crash inputs are written to <build>/long/<harness>/ (crash-*, leak-*,
# timeout-*, oom-*); reproduce one with `<build>/tests/fuzz/fuzz_<harness> FILE`.
# Exit status: 1 if any harness found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-max_total_time=3600)
while getopts "t:n:" opt; do
  case $opt in
    t) limit=(-max_total_time="$OPTARG") ;;
    n) limit=(-runs="$OPTARG") ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(scenario elf vm runfile model)

build=${BPFTSIM_FUZZ_BUILD:-build/fuzz}
if ! grep -q '^BPFTSIM_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DBPFTSIM_BENCHMARKS=OFF \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBPFTSIM_SANITIZE=ON -DBPFTSIM_FUZZ=ON >/dev/null
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j "${BPFTSIM_JOBS:-$(nproc)}" --target "${targets[@]}" bpftsim_progs

status=0
for h in "${harnesses[@]}"; do
  work=$build/long/$h
  mkdir -p "$work/corpus" "$work/seeds"
  seeds=()
  case $h in
    scenario) seeds=(scenarios) ;;
    elf) seeds=("$build/scenarios/progs") ;;
    vm | runfile) seeds=("$work/seeds") ;;
  esac
  echo "== fuzz_$h ${limit[*]}"
  if ! BPFTSIM_FUZZ_VM_SEEDS=$work/seeds BPFTSIM_FUZZ_RUNFILE_SEEDS=$work/seeds \
    nice -n 19 "$build/tests/fuzz/fuzz_$h" "${limit[@]}" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$work/" ${BPFTSIM_FUZZ_FLAGS:-} \
    "$work/corpus" "${seeds[@]}" 2>"$work/log"; then
    status=1
  fi
  grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)" \
    "$work/log" || true
  ls "$work" | grep -E '^(crash|leak|timeout|oom)-' || echo "no crash inputs"
done
exit $status
