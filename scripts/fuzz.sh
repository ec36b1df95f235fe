#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for SECONDS (default 20),
# starting from tests/fuzz/corpus/<name>. A crash or a broken invariant fails the script and
# leaves the input in build-fuzz/ (crash-*).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
scripts/setup.sh --fuzz
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DLAYERSWARM_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-fuzz -j "${JOBS:-2}"
for name in route range challenge token manifest values config announce swarm_protocol pki; do
  corpus=build-fuzz/corpus-$name
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/$name/* "$corpus/" 2>/dev/null || true
  (cd build-fuzz && "./tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_EACH" -print_final_stats=0 \
     -max_len=4096 "corpus-$name" 2>"fuzz_$name.log") ||
    { echo "fuzz: fuzz_$name failed:" >&2; tail -30 "build-fuzz/fuzz_$name.log" >&2; exit 1; }
  echo "fuzz: fuzz_$name: $(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "build-fuzz/fuzz_$name.log" | tail -1)s, no failure"
done
