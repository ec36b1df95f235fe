#!/usr/bin/env bash
# Checks the systemd units in systemd/ offline (no running systemd needed):
# `systemd-analyze verify` (every directive known and valid, the program executable: ExecStart
# is pointed at the freshly built binary) and `systemd-analyze security --offline`, failing
# when a unit's exposure rises above 1.5 (on systemd's 0-10 scale; both are 1.2 today, see
# docs/operations.md). Also checks what the packaging relies on: the units start the packaged
# configuration as the layerswarm user, never restart on a configuration error (status 2), and
# the supernode's skips itself until a site exists.
#   tests/packaging/check_units.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
command -v systemd-analyze >/dev/null || { echo "check_units: no systemd-analyze; skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { grep -qxF "$2" "$1" || { echo "check_units: $1 lacks '$2'"; fail=1; }; }
for role in agent supernode; do
  unit=systemd/layerswarm-$role.service
  check "$unit" "ExecStart=/usr/bin/layerswarm-$role --config /etc/layerswarm/$role.json"
  check "$unit" "User=layerswarm"
  check "$unit" "StateDirectory=layerswarm/$role"
  check "$unit" "RestartPreventExitStatus=2"
  check "$unit" "CapabilityBoundingSet="
  check "$unit" "ProtectSystem=strict"
  sed "s#^ExecStart=/usr/bin/layerswarm-$role#ExecStart=$build/$role/layerswarm-$role#" "$unit" \
    >"$tmp/layerswarm-$role.service"
  if ! systemd-analyze verify "$tmp/layerswarm-$role.service"; then
    echo "check_units: systemd-analyze verify $unit failed"; fail=1
  fi
  if ! systemd-analyze security --offline=true --threshold=15 "$tmp/layerswarm-$role.service" \
      >"$tmp/security-$role.txt" 2>&1; then
    echo "check_units: $unit is more exposed than 1.5:"; grep '✗' "$tmp/security-$role.txt"; fail=1
  fi
  tail -1 "$tmp/security-$role.txt"
done
check systemd/layerswarm-supernode.service "ConditionPathExists=/etc/layerswarm/site/token"
# The packaged configurations are valid configurations of the built programs, and their cache
# is the unit's StateDirectory.
for role in agent supernode; do
  "$build/$role/layerswarm-$role" --config "packaging/etc/$role.json" --check-config || fail=1
  grep -q "\"data_dir\": \"/var/lib/layerswarm/$role\"" "packaging/etc/$role.json" ||
    { echo "check_units: packaging/etc/$role.json: data_dir is not the unit's StateDirectory"; fail=1; }
done
exit $fail
