#!/usr/bin/env bash
# End to end with the real clients (README.md, the client configuration sections): a docker-registry upstream with generated
# images, layerswarm-agent in front of it, and every client pulling through the agent the way
# it is configured in the README:
#   skopeo      docker://AGENT/...                      (plain-http fallback after TLS probe)
#   podman      registries.conf [[registry.mirror]]      pull + run
#   containerd  ctr images pull --hosts-dir             (sends ?ns=docker.io)
#   dockerd     daemon.json registry-mirrors            docker pull + docker run --network none
# Every daemon gets private directories under a work dir and is stopped by PID. The upstream
# for docker.io names is a closed loopback port, so a failing mirror can never send a client
# off this machine (dockerd excepted, see below).
# Needs root and `scripts/setup.sh --e2e`; run after `scripts/build.sh`.
#   tests/e2e/run.sh            (KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
AGENT_BIN=${AGENT_BIN:-$ROOT/build/agent/layerswarm-agent}
[ "$(id -u)" -eq 0 ] || { echo "e2e: needs root (podman, containerd and dockerd)" >&2; exit 2; }
[ -x "$AGENT_BIN" ] || { echo "e2e: build first (scripts/build.sh)" >&2; exit 2; }

source scripts/lib.sh
ls_workdir layerswarm-e2e
KEYJSON_EXISTED=$([ -e /etc/docker/key.json ] && echo yes || echo no)
RESULTS=()
ls_on_cleanup() {
  # containerd's overlay snapshots and dockerd's mounts live under the work dir.
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  [ "$KEYJSON_EXISTED" = yes ] || rm -f /etc/docker/key.json
}

wait_for() {  # wait_for DESCRIPTION COMMAND... : polls for up to 30 s
  local what=$1 i
  shift
  for i in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "e2e: timed out waiting for $what" >&2
  return 1
}
record() { RESULTS+=("$(printf '%-11s %-6s %s' "$1" "$2" "$3")"); echo "e2e: $1: $2 $3"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f s", b - a}'; }

# --- upstream with images -------------------------------------------------------------
python3 scripts/mkimage.py "$WORK/busybox" --busybox /bin/busybox --layer 3M --label e2e-busybox \
  >/dev/null
python3 scripts/mkimage.py "$WORK/multi" --busybox /bin/busybox --layer 1M \
  --platform linux/amd64 --platform linux/arm64 --label e2e-multi >/dev/null
ls_start_registry upstream
UPSTREAM=$REGISTRY
skopeo --insecure-policy copy -q --dest-tls-verify=false --format v2s2 \
  "oci:$WORK/busybox:latest" "docker://$UPSTREAM/library/busybox:latest"
skopeo --insecure-policy copy -q --dest-tls-verify=false --all \
  "oci:$WORK/multi:latest" "docker://$UPSTREAM/library/multi:latest"

# --- the agent ---------------------------------------------------------------------------
"$AGENT_BIN" --listen 127.0.0.1:0 --data-dir "$WORK/agent" --upstream "http://$UPSTREAM" \
  --registry "docker.io=http://$UPSTREAM" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
ls_wait_log "$WORK/agent.log" "listening on"
AGENT=$(ls_listening "$WORK/agent.log")
echo "e2e: upstream $UPSTREAM, agent $AGENT, work dir $WORK"

# --- skopeo ------------------------------------------------------------------------------
t=$(date +%s.%N)
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$AGENT/library/busybox:latest" \
  "oci:$WORK/skopeo-out:latest"
record skopeo ok "copy docker://$AGENT/library/busybox:latest -> oci: ($(elapsed "$t"))"

# --- podman ------------------------------------------------------------------------------
mkdir -p "$WORK/podman"
cat >"$WORK/podman/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:9"
insecure = true
[[registry.mirror]]
location = "$AGENT"
insecure = true
CONF
cat >"$WORK/podman/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$WORK/podman/run"
graphroot = "$WORK/podman/root"
CONF
cat >"$WORK/podman/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
export CONTAINERS_REGISTRIES_CONF=$WORK/podman/registries.conf
export CONTAINERS_STORAGE_CONF=$WORK/podman/storage.conf
export CONTAINERS_CONF=$WORK/podman/containers.conf
t=$(date +%s.%N)
podman pull -q docker.io/library/busybox:latest >"$WORK/podman/pull.log" 2>&1
out=$(podman run --rm --network none docker.io/library/busybox:latest /bin/busybox echo hello-from-podman 2>>"$WORK/podman/pull.log")
[ "$out" = hello-from-podman ]
record podman ok "pull docker.io/library/busybox + run: '$out' ($(elapsed "$t"))"
podman rmi -a -f >/dev/null 2>&1 || true
unset CONTAINERS_REGISTRIES_CONF CONTAINERS_STORAGE_CONF CONTAINERS_CONF

# --- containerd --------------------------------------------------------------------------
CTRD=$WORK/containerd
mkdir -p "$CTRD/certs.d/docker.io"
cat >"$CTRD/config.toml" <<CONF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD/containerd.sock"
[ttrpc]
  address = "$CTRD/containerd.sock.ttrpc"
CONF
cat >"$CTRD/certs.d/docker.io/hosts.toml" <<CONF
server = "http://127.0.0.1:9"

[host."http://$AGENT"]
  capabilities = ["pull", "resolve"]
CONF
containerd --config "$CTRD/config.toml" >"$CTRD/containerd.log" 2>&1 &
PIDS+=($!)
wait_for "containerd" test -S "$CTRD/containerd.sock"
t=$(date +%s.%N)
ctr -a "$CTRD/containerd.sock" images pull --hosts-dir "$CTRD/certs.d" \
  docker.io/library/multi:latest >"$CTRD/pull.log" 2>&1
ns_requests=$(grep -c 'library/multi/manifests/latest?ns=docker.io\|ns=docker.io' "$WORK/agent.log" || true)
ns_lines=$(grep -c '/library/multi/' "$WORK/agent.log" || true)
record containerd ok "ctr images pull --hosts-dir docker.io/library/multi:latest (index, unpacked; $ns_lines agent requests) ($(elapsed "$t"))"

# --- dockerd (classic image store) -------------------------------------------------------
# If the mirror failed, dockerd would fall back to registry-1.docker.io: pull only after the
# mirror answered, and only an image it holds.
curl -sf "http://$AGENT/v2/library/busybox/manifests/latest" -o /dev/null
DK=$WORK/docker
mkdir -p "$DK"
cat >"$DK/daemon.json" <<CONF
{
  "data-root": "$DK/root",
  "exec-root": "$DK/exec",
  "pidfile": "$DK/docker.pid",
  "hosts": ["unix://$DK/docker.sock"],
  "containerd": "$CTRD/containerd.sock",
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "bridge": "none",
  "storage-driver": "vfs",
  "registry-mirrors": ["http://$AGENT"]
}
CONF
dockerd --config-file "$DK/daemon.json" >"$DK/dockerd.log" 2>&1 &
PIDS+=($!)
wait_for "dockerd" /usr/bin/docker -H "unix://$DK/docker.sock" version
t=$(date +%s.%N)
/usr/bin/docker -H "unix://$DK/docker.sock" pull busybox >"$DK/pull.log" 2>&1
out=$(/usr/bin/docker -H "unix://$DK/docker.sock" run --rm --network none busybox /bin/busybox echo hello-from-dockerd)
[ "$out" = hello-from-dockerd ]
record dockerd ok "docker pull busybox (mirror) + docker run --network none: '$out' ($(elapsed "$t"))"

# --- layerswarm export | docker load (a cold backup, the air-gapped edge) -----------------
CLI_BIN=${LS_CLI_BIN:-$ROOT/build/cli/layerswarm}
t=$(date +%s.%N)
"$CLI_BIN" --server "http://$AGENT" export library/busybox:latest -o "$WORK/busybox.tar" >"$DK/export.log"
/usr/bin/docker -H "unix://$DK/docker.sock" rmi busybox:latest >>"$DK/export.log" 2>&1
/usr/bin/docker -H "unix://$DK/docker.sock" load -i "$WORK/busybox.tar" >>"$DK/export.log" 2>&1
out=$(/usr/bin/docker -H "unix://$DK/docker.sock" run --rm --network none busybox:latest /bin/busybox echo hello-from-export)
[ "$out" = hello-from-export ]
record "docker load" ok "layerswarm export library/busybox:latest | docker load + docker run: '$out' ($(elapsed "$t"))"

# --- what the upstream and the agent saw -------------------------------------------------
echo
echo "e2e results:"
printf '  %s\n' "${RESULTS[@]}"
echo
echo "agent requests by source:"
grep -oE ' source=[a-z-]+ status=[0-9]+' "$WORK/agent.log" | sort | uniq -c | sed 's/^/  /'
echo "upstream blob GETs by the agent, per blob (1 each = one upstream copy for all clients):"
grep '"GET /v2/library/[a-z]*/blobs/' "$WORK/upstream.log" | grep layerswarm |
  grep -oE 'blobs/sha256:[0-9a-f]{12}' | sort | uniq -c | sed 's/^/  /'
dups=$(grep '"GET /v2/library/[a-z]*/blobs/' "$WORK/upstream.log" | grep layerswarm |
  grep -oE 'blobs/sha256:[0-9a-f]{64}' | sort | uniq -d | wc -l)
errors=$(grep -cE ' status=(5[0-9][0-9])' "$WORK/agent.log" || true)
echo "blobs fetched upstream more than once: $dups; agent 5xx answers: $errors"
[ "$dups" -eq 0 ] && [ "$errors" -eq 0 ]
echo "e2e: all four clients pulled through layerswarm-agent"
