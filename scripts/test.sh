#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit, lints and
# integration tests with real docker-registry, skopeo and agent processes on loopback).
#   scripts/test.sh [ctest arguments, e.g. -L unit or -R range]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
cd build
ctest --output-on-failure -j2 --timeout 300 "$@"
