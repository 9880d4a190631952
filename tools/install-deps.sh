#!/usr/bin/env bash
# Installs the Debian 12 packages bpftsim builds and tests with, if any is missing.
# Needs root (or sudo) only when something has to be installed.
set -euo pipefail

# clang builds the BPF programs and, with libclang-rt-14-dev (its ASan/UBSan and libFuzzer
# runtimes), the Debug+ASan build and the fuzz harnesses of tools/test.sh. GNU parallel runs the
# shards of `bpftsim explore` (README, "Exploring schedules").
packages=(
  g++ cmake ninja-build pkg-config clang libclang-rt-14-dev
  libboost-dev libfmt-dev nlohmann-json3-dev catch2 librapidcheck-dev
  libbpf-dev libelf-dev libcli11-dev libbenchmark-dev python3 parallel
)

# Node.js and npm run the DevTools trace engine over our Perfetto traces
# (tools/check-perfetto-devtools.sh). Debian's nodejs and npm, unless a Node.js with npm is
# already there (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
