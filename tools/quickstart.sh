#!/usr/bin/env bash
# From a fresh Debian 12 machine to bpftsim running its main job: install the packages, build
# the Release tool, then replay the scenario library (races, error codes, kernel selftests).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPFTSIM_BENCHMARKS=OFF
cmake --build build/release --target bpftsim
exec build/release/tools/bpftsim check scenarios/
