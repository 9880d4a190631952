#!/usr/bin/env bash
# One libFuzzer harness for a fixed number of runs from seed 1 (deterministic), as ctest runs it:
#   smoke.sh HARNESS WORKDIR RUNS [SEED_DIR | @seeds]...
# WORKDIR is recreated: WORKDIR/corpus receives the inputs libFuzzer adds (the seed directories
# are only read), crash inputs land in WORKDIR. "@seeds" is WORKDIR/seeds, which the harness
# fills itself (fuzz_vm: programs of the built objects; fuzz_runfile: run files of a few of the
# tree's scenarios). Extra libFuzzer flags: $BPFTSIM_FUZZ_FLAGS.
set -euo pipefail
harness=$1 work=$2 runs=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus" "$work/seeds"
dirs=()
for d in "$@"; do
  if [ "$d" = @seeds ]; then dirs+=("$work/seeds"); else dirs+=("$d"); fi
done
export BPFTSIM_FUZZ_VM_SEEDS=$work/seeds BPFTSIM_FUZZ_RUNFILE_SEEDS=$work/seeds
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# -use_cmp=0: mutations guided by compared values would see heap addresses, which differ from run
# to run; without them the same seed explores the same inputs every time.
# shellcheck disable=SC2086
exec "$harness" -seed=1 -runs="$runs" -use_cmp=0 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$work/" ${BPFTSIM_FUZZ_FLAGS:-} "$work/corpus" "${dirs[@]}"
