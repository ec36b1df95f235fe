#!/usr/bin/env bash
# Configures and builds into build/ (release, default) or build-asan/ (ASan+UBSan).
#   scripts/build.sh [release|asan]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-release}
case "$mode" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DLAYERSWARM_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja -DLAYERSWARM_TESTS=ON "${flags[@]}" >/dev/null
# Two jobs: each heavy translation unit takes ~1 GB of compiler memory.
ninja -C "$dir" -j "${JOBS:-2}"
