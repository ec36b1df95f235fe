#!/usr/bin/env bash
# Installs what layerswarm needs on Debian 12, from Debian's packages only. Idempotent: installs
# only what is missing. Needs root (or sudo).
#   scripts/setup.sh            build, test and demo dependencies
#   scripts/setup.sh --bench    also what the benchmarks compare against (nginx, wrk, hyperfine)
#   scripts/setup.sh --e2e      also the real clients for tests/e2e (podman, containerd, dockerd)
#   scripts/setup.sh --fuzz     also clang and libFuzzer (scripts/fuzz.sh)
#   scripts/setup.sh --package  also debhelper, lintian and debootstrap (scripts/package.sh and
#                               its install test, tests/install/run.sh)
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build ccache pkg-config
  libboost-dev libssl-dev librocksdb-dev nlohmann-json3-dev libspdlog-dev libcli11-dev catch2
  libtorrent-rasterbar-dev prometheus-cpp-dev libarchive-dev
  # tests and demo: a real upstream registry, a real client, helpers
  docker-registry skopeo apache2-utils python3 openssl curl ca-certificates clang-format
  busybox-static iproute2
  # the outsider in tests/integration/security_test.cpp: a plain BitTorrent client
  python3-libtorrent tcpdump
  # metrics: promtool checks and unit-tests the alert rules; a real Prometheus scrapes a real
  # agent and supernode and runs every dashboard query (tests/integration/metrics_test.cpp)
  prometheus
  # the supernode's status page is rendered in headless Chromium (tests/integration/metrics_test.cpp)
  chromium
  # packaging checks: systemd-analyze verifies the units, PyYAML reads the Kubernetes manifests
  systemd python3-yaml
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(nginx-light wrk hyperfine time) ;;
    --e2e) packages+=(podman containerd docker.io runc iproute2 uidmap) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    --package) packages+=(build-essential debhelper help2man lintian debootstrap) ;;
    *) echo "usage: $0 [--bench] [--e2e] [--fuzz] [--package]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# docker-registry, nginx and containerd would start system services on install; none is wanted
# (tests start their own on ephemeral ports). policy-rc.d exit 101 = "do not start".
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
