#!/usr/bin/env bash
# Multi-host rollout on one machine: network namespaces on a private bridge, every link shaped
# with HTB (per-peer classes, so flows share a link fairly; docs/benchmarks.md "Rollout through
# the swarm"). Hosts: the upstream registry (docker-registry), the supernode's host, and N
# nodes, each with its own agent and a skopeo that pulls the same image at the same moment.
# For each N it measures, in the same run:
#   layerswarm   nodes pull through their agents (supernode + swarm)
#   direct       nodes pull from the upstream registry themselves
#   proxy        nodes pull from a central docker-registry in proxy mode on the supernode host
# and prints the slowest and median node, the bytes the upstream sent, CPU use, and the bound
# T_min = max(S/u_upstream, S/d_node, N*S/(u_supernode + N*u_node)).
#
# --late "60 360": after each layerswarm rollout, node 1 starts over as a new node (a fresh
# agent, empty cache) that many seconds after the rollout ended and pulls the image alone;
# prints where its bytes came from (the supernode's host vs the other nodes, link counters).
# LS_LATE_AGENT_ARGS: more arguments for the late joiner's agent alone (after LS_AGENT_ARGS),
# e.g. "--log-level debug" to see its connections without slowing the rollout's nodes.
# --timeline FILE: during each rollout, the link of the host that feeds the nodes (the supernode's
# host, or the one --timeline-host names; the upstream's for direct pulls) every second: Mbit/s
# received and sent and the mean packet sizes, to see when its uplink idles and how finely the
# traffic is cut.
# --ttfb instead: one node, the time to the first byte of a cold layer through the swarm (curl)
# next to a direct GET from the upstream and the bound (one chunk's transfer time).
#   benchmarks/swarm.sh [--nodes "4 8 16"] [--size 200] [--layers 4] [--rate 100]
#                       [--systems "layerswarm direct proxy"] [--chunk MiB|KiB"K"] [--piece KiB] [--check]
# --chunk: fixed chunks of that size (default: the supernode sizes them to its link).
# --size in MiB (the image's layers together), --rate in Mbit/s for every link. --check (used
# by the [slow] test): exit 1 unless every layerswarm node got every blob and the upstream sent
# each blob exactly once. Needs root (namespaces, tc). Removes exactly what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODES="1 4 8 16"
SIZE=200
LAYERS=4
RATE=100
SYSTEMS="layerswarm direct proxy"
CHUNK=4
PIECE=256
CHECK=
TTFB=
LATE=
CLOSED=
TIMELINE=
TIMELINE_HOST=sn
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --chunk) CHUNK=$2; CHUNK_FIXED=1; shift 2 ;;  # MiB, or KiB with a K suffix (512K)
    --piece) PIECE=$2; shift 2 ;;
    --check) CHECK=1; shift ;;
    --ttfb) TTFB=1; shift ;;
    --late) LATE=$2; shift 2 ;;
    --closed) CLOSED=1; shift ;;
    --timeline) TIMELINE=$2; shift 2 ;;
    --timeline-host) TIMELINE_HOST=$2; shift 2 ;;  # sn (default), up or n1..nN
    *) echo "usage: $0 [--nodes LIST] [--size MiB] [--layers N] [--rate Mbit] [--systems LIST] [--chunk MiB] [--check] [--ttfb] [--late "S ..."] [--closed] [--timeline FILE] [--timeline-host HOST]" >&2; exit 2 ;;
  esac
done
case $CHUNK in
  *K) CHUNK_BYTES=$((${CHUNK%K} << 10)) ;;
  *) CHUNK_BYTES=$((CHUNK << 20)) ;;
esac
# Without --chunk the supernode sizes chunks to its upstream link (4 MiB down to 1 MiB); with
# it, every chunk has that size.
CHUNK_MIN=""
if [ -n "${CHUNK_FIXED:-}" ]; then CHUNK_MIN=" \"min_chunk_size\": $CHUNK_BYTES,"; fi
if [ "$(id -u)" != 0 ]; then echo "swarm.sh: needs root (network namespaces)" >&2; exit 77; fi
for tool in ip tc docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || { echo "swarm.sh: $tool missing (scripts/setup.sh)" >&2; exit 77; }
done
# Network namespaces may be unavailable (a chroot, a container without CAP_SYS_ADMIN): skip.
if ! ip netns add "lsw$$-probe" 2>/dev/null; then
  echo "swarm.sh: cannot create network namespaces here; skipped" >&2
  exit 77
fi
if ! ip netns exec "lsw$$-probe" true 2>/dev/null; then  # a chroot: no private mounts
  ip netns del "lsw$$-probe"
  echo "swarm.sh: cannot run commands in network namespaces here; skipped" >&2
  exit 77
fi
ip netns del "lsw$$-probe"
BIN=${LS_BUILD:-$ROOT/build}
if [ -z "${LS_BUILD:-}" ]; then scripts/build.sh release >/dev/null; fi
AGENT_BIN=$BIN/agent/layerswarm-agent
SUPERNODE_BIN=$BIN/supernode/layerswarm-supernode

source scripts/lib.sh
ls_workdir layerswarm-netns
P=lsw$$  # every namespace this run makes starts with this
log() { echo "swarm: $*" >&2; }
now() { date +%s.%N; }
ls_on_cleanup() {  # ends what still runs in our namespaces (ours alone), then removes them
  local ns pid
  for pid in ${FD_PID:-} ${TIMELINE_PID:-}; do kill "$pid" 2>/dev/null || true; done  # samplers
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
  done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
}

# --- network -------------------------------------------------------------------------------
addr_of() {  # host name -> address
  case "$1" in
    up) echo 10.77.0.2 ;;
    sn) echo 10.77.0.3 ;;
    n*) echo "10.77.0.$((10 + ${1#n}))" ;;
  esac
}
# shape NS DEV MATCH: HTB on DEV's egress, one class per other host (RATE/peers, ceil RATE).
shape() {
  local ns=$1 dev=$2 match=$3 other i=0 n=$((${#HOSTS[@]} - 1)) share
  share=$(awk -v r="$RATE" -v n="$n" 'BEGIN {printf "%d", r * 1000 / n}')
  tc -n "$ns" qdisc add dev "$dev" root handle 1: htb default 999
  tc -n "$ns" class add dev "$dev" parent 1: classid 1:1 htb rate "${RATE}mbit" ceil "${RATE}mbit" quantum 1514
  tc -n "$ns" class add dev "$dev" parent 1:1 classid 1:999 htb rate "${share}kbit" ceil "${RATE}mbit" quantum 1514
  for other in "${HOSTS[@]}"; do
    [ "$other" = "$4" ] && continue
    i=$((i + 1))
    tc -n "$ns" class add dev "$dev" parent 1:1 classid "1:$((10 + i))" htb rate "${share}kbit" ceil "${RATE}mbit" quantum 1514
    tc -n "$ns" qdisc add dev "$dev" parent "1:$((10 + i))" bfifo limit 96000
    tc -n "$ns" filter add dev "$dev" parent 1: protocol ip u32 match ip "$match" "$(addr_of "$other")/32" flowid "1:$((10 + i))"
  done
}
net_up() {  # net_up N: the bridge, the upstream and supernode hosts and N nodes
  local n=$1 h
  HOSTS=(up sn)
  for ((h = 1; h <= n; h++)); do HOSTS+=("n$h"); done
  ip netns add "$P-br"
  ip -n "$P-br" link add br0 type bridge
  ip -n "$P-br" link set br0 up
  for h in "${HOSTS[@]}"; do
    ip netns add "$P-$h"
    ip -n "$P-$h" link set lo up
    ip link add h0 netns "$P-$h" type veth peer name "v$h" netns "$P-br"
    ip -n "$P-br" link set "v$h" master br0 up
    ip -n "$P-$h" addr add "$(addr_of "$h")/24" dev h0
    ip -n "$P-$h" link set h0 up
    shape "$P-$h" h0 dst "$h"   # the host's upload
    shape "$P-br" "v$h" src "$h"  # its download
  done
}
net_down() { ls_on_cleanup; }
in_ns() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }

# --- processes -----------------------------------------------------------------------------
start_registry() {  # start_registry HOST PORT NAME [YAML]
  local host=$1 port=$2 name=$3 extra=${4:-}
  cat >"$WORK/$name.yml" <<YML
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $WORK/$name-data}, delete: {enabled: true}}
http: {addr: "$(addr_of "$host"):$port", secret: layerswarm-$name}
$extra
YML
  # ip netns exec execs the command: $! is the registry itself.
  ip netns exec "$P-$host" docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  ls_wait_log "$WORK/$name.log" "listening on"
}
stop_pid() {  # SIGTERM, wait (bounded), SIGKILL
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# pull_all N SYSTEM REGISTRY_OF: every node pulls at once; REGISTRY_OF is a function that
# names the registry node i pulls from. Sets TIMES (seconds per node) and FAILED.
pull_all() {
  local n=$1 name=$2 from=$3 i start pids=()
  FAILED=0
  start=$(now)
  for ((i = 1; i <= n; i++)); do
    mkdir -p "$WORK/cache-n$i"
    rm -rf "$WORK/out-$name-n$i"
    (
      in_ns "n$i" sh -c 'mount --bind "$1" /var/lib/containers/cache && shift &&
        exec skopeo --insecure-policy copy --src-tls-verify=false "$@"' _ "$WORK/cache-n$i" \
        "docker://$($from "$i")/bench/app:v1" "oci:$WORK/out-$name-n$i:v1" \
        >"$WORK/skopeo-$name-n$i.log" 2>&1 && now >"$WORK/done-$name-n$i"
    ) &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || FAILED=$((FAILED + 1)); done
  TIMES=()
  for ((i = 1; i <= n; i++)); do
    if [ -f "$WORK/done-$name-n$i" ]; then
      TIMES+=("$(awk -v a="$start" -v b="$(cat "$WORK/done-$name-n$i")" 'BEGIN {printf "%.2f", b - a}')")
      rm -f "$WORK/done-$name-n$i"
    fi
  done
}
# Bytes of blob bodies the upstream sent, from its access log after line $1.
upstream_bytes() {
  tail -n +"$(($1 + 1))" "$WORK/upstream.log" |
    awk '/"GET \/v2\/[^ ]*\/blobs\/sha256:/ { for (i = 1; i <= NF; i++) if ($i ~ /^"GET$/) { print $(i + 4) } }' |
    awk '$1 ~ /^[0-9]+$/ {s += $1} END {printf "%.0f", s}'
}
upstream_blob_gets() {
  tail -n +"$(($1 + 1))" "$WORK/upstream.log" | grep -c '"GET /v2/[^ ]*/blobs/sha256:' || true
}
tx_bytes() { ip -n "$P-$1" -s -j link show h0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["bytes"])'; }
# timeline_start N SYSTEM HOST: samples HOST's link once a second into $TIMELINE (bounded: at
# most an hour); sets TIMELINE_PID.
timeline_start() {
  local host=$3
  echo "# N=$1 $2 rate=$RATE Mbit/s, host $host: seconds, rx Mbit/s, tx Mbit/s, mean rx and tx packet bytes" >>"$TIMELINE"
  (
    t0=$(now); last=
    for _ in $(seq 1 3600); do
      line=$(ip -n "$P-$host" -s -j link show h0 2>/dev/null |
        python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["rx"]["bytes"], s["tx"]["bytes"], s["rx"]["packets"], s["tx"]["packets"])') || break
      t=$(now)
      if [ -n "$last" ]; then
        awk -v t="$t" -v t0="$t0" -v a="$last" -v b="$line" -v lt="$lt" 'BEGIN {
          split(a, x, " "); split(b, y, " "); d = t - lt;
          rp = y[3] - x[3]; tp = y[4] - x[4];
          printf "%6.1f %7.2f %7.2f %7.0f %7.0f\n", t - t0, (y[1] - x[1]) * 8 / d / 1e6, (y[2] - x[2]) * 8 / d / 1e6,
            (rp > 0 ? (y[1] - x[1]) / rp : 0), (tp > 0 ? (y[2] - x[2]) / tp : 0) }' >>"$TIMELINE"
      fi
      last=$line; lt=$t
      sleep 1  # the sampling period, not a synchronisation
    done
  ) &
  TIMELINE_PID=$!
}
# "BUSY TOTAL SOFTIRQ" ticks of the whole machine (/proc/stat).
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8, $8}' /proc/stat; }
# User and system CPU seconds of processes, summed: proc_cpu PID... -> "USER SYS"
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() {
  for pid in "$@"; do cat "/proc/$pid/stat" 2>/dev/null || true; done |
    awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); u += $12; s += $13 } END { printf "%.2f %.2f", u / hz, s / hz }'
}
# CPU seconds per GiB: per_gib "BEFORE" "AFTER" BYTES -> "USER+SYS/USER"
per_gib() {
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { split(a, x, " "); split(b, y, " ");
    g = n / 1073741824; if (g <= 0) { print "-"; exit }
    printf "%.1f/%.1f", (y[1] - x[1] + y[2] - x[2]) / g, (y[1] - x[1]) / g }'
}
# The machine's softirq CPU-s per GiB: softirq_gib "BEFORE" "AFTER" BYTES (cpu_busy samples). The
# shaped links' packet work runs in softirq; this kernel counts CPU time by ticks, so that work
# also shows as system time of whichever process a tick interrupted (mostly the agents).
softirq_gib() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " ");
    g = n / 1073741824; if (g <= 0) { print "-"; exit } printf "%.1f", (y[3] - x[3]) / hz / g }'
}
cpu_percent() {  # cpu_percent "BEFORE" "AFTER"
  awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2])}'
}
stats() {  # prints "slowest median" of TIMES
  python3 -c 'import statistics,sys; t=[float(x) for x in sys.argv[1:]]; print("%.2f %.2f" % (max(t), statistics.median(t)) if t else "- -")' "${TIMES[@]}"
}

# --- the image -----------------------------------------------------------------------------
log "work dir $WORK; image ${SIZE} MiB in $LAYERS layers; links ${RATE} Mbit/s; nodes: $NODES"
layer_args=()
per=$((SIZE / LAYERS))
for ((i = 0; i < LAYERS; i++)); do layer_args+=(--layer "${per}M"); done
python3 scripts/mkimage.py "$WORK/image" --label bench "${layer_args[@]}" >"$WORK/image.json"
IMAGE_BYTES=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(b["size"] for b in d["blobs"] if "manifest" not in b["mediaType"]))' "$WORK/image.json")
BLOBS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(b["digest"] for b in d["blobs"] if "manifest" not in b["mediaType"]))' "$WORK/image.json")
mkdir -p /var/lib/containers/cache
echo "layerswarm-cluster-token-$P" >"$WORK/token"
# --closed: a closed site (docs/security.md): TLS between peers, an https control plane.
SN_URL=http://10.77.0.3:65100
TOKEN_FILE=$WORK/token
SN_JSON_EXTRA=${LS_SUPERNODE_JSON:-}  # more supernode config keys, e.g. ", \"upstream_client\": {...}"
AGENT_CONF=()
if [ -n "$CLOSED" ]; then
  "$SUPERNODE_BIN" init-site --dir "$WORK/site" --ip 10.77.0.3 >/dev/null
  SN_URL=https://10.77.0.3:65101
  TOKEN_FILE=$WORK/site/token
  SN_JSON_EXTRA=", \"tls\": {\"listen\": \"10.77.0.3:65101\", \"cert\": \"$WORK/site/supernode.pem\", \"key\": \"$WORK/site/supernode.key\"}, \"site\": {\"ca_cert\": \"$WORK/site/ca.pem\", \"ca_key\": \"$WORK/site/ca.key\"}"
  echo "{\"supernode_ca_file\": \"$WORK/site/ca.pem\"}" >"$WORK/agent.json"
  AGENT_CONF=(--config "$WORK/agent.json")
fi

if [ -n "$TTFB" ]; then
  net_up 1
  start_registry up 5000 upstream
  in_ns up skopeo --insecure-policy copy --dest-tls-verify=false "oci:$WORK/image:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tag"])' "$WORK/image.json")" \
    "docker://10.77.0.2:5000/bench/app:v1" >"$WORK/push.log" 2>&1
  echo "{\"swarm\": {\"chunk_size\": $CHUNK_BYTES,$CHUNK_MIN \"piece_size\": $((PIECE << 10))}$SN_JSON_EXTRA}" >"$WORK/supernode.json"
  # Seconds from sending the GET to the first body byte (not the headers), then drains it.
  first_byte='import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], timeout=120)
t = time.monotonic(); c.request("GET", sys.argv[2]); r = c.getresponse(); r.read(1)
print("%.3f" % (time.monotonic() - t)); r.read()'
  # The registry answers its first blob GET ~30 ms slower than later ones (its own start-up):
  # one GET of the image's last blob (the config, below the swarm's min_blob_size) first, so
  # that layer 1's figure is layerswarm's and not the registry's warm-up.
  in_ns n1 python3 -c "$first_byte" 10.77.0.2:5000 "/v2/bench/app/blobs/${BLOBS##* }" >/dev/null
  printf '%-6s %-22s %-22s %-10s\n' layer "first byte: layerswarm" "first byte: direct" "bound" 
  i=0
  for d in $BLOBS; do
    i=$((i + 1))
    ip netns exec "$P-sn" "$SUPERNODE_BIN" --listen 10.77.0.3:65100 --data-dir "$WORK/sn-ttfb-$i" \
      --upstream http://10.77.0.2:5000 --token-file "$TOKEN_FILE" --p2p-listen 10.77.0.3:6881 \
      --config "$WORK/supernode.json" ${LS_SUPERNODE_ARGS:-} >"$WORK/supernode-ttfb-$i.log" 2>&1 &
    sn=$!
    ip netns exec "$P-n1" "$AGENT_BIN" --listen 127.0.0.1:65001 --data-dir "$WORK/agent-ttfb-$i" \
      --upstream http://10.77.0.2:5000 --supernode "$SN_URL" "${AGENT_CONF[@]}" --token-file "$TOKEN_FILE" \
      --p2p-listen 10.77.0.11:6881 ${LS_AGENT_ARGS:-} >"$WORK/agent-ttfb-$i.log" 2>&1 &
    ag=$!
    ls_wait_log "$WORK/supernode-ttfb-$i.log" "listening on"
    ls_wait_log "$WORK/agent-ttfb-$i.log" "listening on"
    swarm=$(in_ns n1 python3 -c "$first_byte" 127.0.0.1:65001 "/v2/bench/app/blobs/$d")
    direct=$(in_ns n1 python3 -c "$first_byte" 10.77.0.2:5000 "/v2/bench/app/blobs/$d")
    bound=$(awk -v c="$CHUNK_BYTES" -v r="$RATE" 'BEGIN {printf "%.3f", c * 8 / (r * 1e6 * 0.956)}')
    printf '%-6s %-22s %-22s %-10s\n' "$i" "$swarm s" "$direct s" "$bound s"
    stop_pid "$ag"; stop_pid "$sn"
  done
  exit 0
fi
TABLE=$WORK/table.txt
printf '%-4s %-11s %9s %9s %13s %8s %10s %10s %5s %8s %12s %12s %12s %9s %9s %10s %9s\n' N system slowest_s median_s upstream_MiB up/S sn_tx_MiB nodes_tx_MiB CPU% T_min_s agents_cpu/G sn_cpu/G reg_cpu/G agent_RSS redundant softirq/G agent_fds >"$TABLE"
# late_joiners N: node 1 rejoins as a new node after each delay of $LATE (seconds after the
# rollout ended) and pulls alone; one line per delay in $LATE_TABLE.
LATE_TABLE=$WORK/late.txt
late_joiners() {
  local n=$1 delay ended waited sn0 peers0 sn1 peers1 i name
  ended=$(now)
  for delay in $LATE; do
    waited=$(awk -v a="$ended" -v b="$(now)" -v d="$delay" 'BEGIN {w = d - (b - a); print (w > 0) ? w : 0}')
    log "late joiner: pulling $delay s after the rollout (waiting $waited s)"
    sleep "$waited"  # the scenario's delay, not a synchronisation
    stop_pid "${started[1]}"
    name=late$delay
    ip netns exec "$P-n1" "$AGENT_BIN" --listen 127.0.0.1:65001 --data-dir "$WORK/agent-data-$n-$name" \
      --upstream http://10.77.0.2:5000 --supernode "$SN_URL" "${AGENT_CONF[@]}" \
      --token-file "$TOKEN_FILE" --p2p-listen "$(addr_of n1):6881" ${LS_AGENT_ARGS:-} ${LS_LATE_AGENT_ARGS:-} \
      >"$WORK/agent-$n-$name.log" 2>&1 &
    started[1]=$!; PIDS+=($!)
    ls_wait_log "$WORK/agent-$n-$name.log" "listening on"
    sn0=$(tx_bytes sn); peers0=0
    for ((i = 2; i <= n; i++)); do peers0=$((peers0 + $(tx_bytes "n$i"))); done
    pull_all 1 "$name-$n" from
    sn1=$(tx_bytes sn); peers1=0
    for ((i = 2; i <= n; i++)); do peers1=$((peers1 + $(tx_bytes "n$i"))); done
    [ "$FAILED" = 0 ] || { log "late joiner at $delay s: pull failed"; status=1; }
    printf '%-4s %-9s %9s %16.1f %16.1f %10s\n' "$n" "${delay}s" "${TIMES[0]:-failed}" \
      "$(awk -v b=$((sn1 - sn0)) 'BEGIN {print b / 1048576}')" \
      "$(awk -v b=$((peers1 - peers0)) 'BEGIN {print b / 1048576}')" \
      "$(awk -v p=$((peers1 - peers0)) -v s=$((sn1 - sn0)) 'BEGIN {printf "%.2f", ((p + s) > 0 ? p / (p + s) : 0)}')" \
      >>"$LATE_TABLE"
    tail -1 "$LATE_TABLE" >&2
  done
}

status=0
for n in $NODES; do
  net_up "$n"
  start_registry up 5000 upstream
  in_ns up skopeo --insecure-policy copy --dest-tls-verify=false "oci:$WORK/image:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tag"])' "$WORK/image.json")" \
    "docker://10.77.0.2:5000/bench/app:v1" >"$WORK/push.log" 2>&1
  tmin=$(awk -v s="$IMAGE_BYTES" -v r="$RATE" -v n="$n" 'BEGIN {
    u = r * 1e6 / 8; a = s / u; b = s / u; c = n * s / (u + n * u);
    m = a; if (b > m) m = b; if (c > m) m = c; printf "%.2f", m }')
  for system in $SYSTEMS; do
    started=()
    case "$system" in
      layerswarm)
        echo "{\"swarm\": {\"chunk_size\": $CHUNK_BYTES,$CHUNK_MIN \"piece_size\": $((PIECE << 10))}$SN_JSON_EXTRA}" >"$WORK/supernode.json"
        ip netns exec "$P-sn" "$SUPERNODE_BIN" --listen 10.77.0.3:65100 --data-dir "$WORK/sn-data-$n" \
          --upstream http://10.77.0.2:5000 --token-file "$TOKEN_FILE" --p2p-listen 10.77.0.3:6881 \
          --config "$WORK/supernode.json" ${LS_SUPERNODE_ARGS:-} >"$WORK/supernode-$n.log" 2>&1 &
        started+=($!); PIDS+=($!)
        ls_wait_log "$WORK/supernode-$n.log" "listening on"
        for ((i = 1; i <= n; i++)); do
          ip netns exec "$P-n$i" "$AGENT_BIN" --listen 127.0.0.1:65001 --data-dir "$WORK/agent-data-$n-$i" \
            --upstream http://10.77.0.2:5000 --supernode "$SN_URL" "${AGENT_CONF[@]}" \
            --token-file "$TOKEN_FILE" --p2p-listen "$(addr_of "n$i"):6881" ${LS_AGENT_ARGS:-} \
            >"$WORK/agent-$n-$i.log" 2>&1 &
          started+=($!); PIDS+=($!)
        done
        for ((i = 1; i <= n; i++)); do ls_wait_log "$WORK/agent-$n-$i.log" "listening on"; done
        from() { echo 127.0.0.1:65001; } ;;
      direct) from() { echo 10.77.0.2:5000; } ;;
      proxy)
        start_registry sn 5001 "proxy-$n" "proxy: {remoteurl: http://10.77.0.2:5000}"
        started+=("${PIDS[-1]}")
        from() { echo 10.77.0.3:5001; } ;;
    esac
    mark=$(wc -l <"$WORK/upstream.log")
    sn_before=$(tx_bytes sn)
    nodes_before=0
    for ((i = 1; i <= n; i++)); do nodes_before=$((nodes_before + $(tx_bytes "n$i"))); done
    reg_pid=${PIDS[0]}
    case "$system" in
      layerswarm) agent_pids=("${started[@]:1}"); sn_pid=${started[0]} ;;
      proxy) agent_pids=(); sn_pid=${started[0]} ;;
      *) agent_pids=(); sn_pid= ;;
    esac
    agents_cpu0=$(proc_cpu "${agent_pids[@]}"); sn_cpu0=$(proc_cpu $sn_pid); reg_cpu0=$(proc_cpu "$reg_pid")
    before=$(cpu_busy)
    TIMELINE_PID=
    if [ -n "$TIMELINE" ]; then
      case "$system" in direct) timeline_start "$n" "$system" up ;; *) timeline_start "$n" "$system" "$TIMELINE_HOST" ;; esac
    fi
    FD_PID=
    echo - >"$WORK/fds-$n"
    if [ "${#agent_pids[@]}" -gt 0 ]; then ls_fd_peak "$WORK/fds-$n" 0.5 "${agent_pids[@]}"; FD_PID=$LS_FD_PEAK_PID; fi
    pull_all "$n" "$system-$n" from
    if [ -n "$FD_PID" ]; then kill "$FD_PID" 2>/dev/null || true; wait "$FD_PID" 2>/dev/null || true; FD_PID=; fi
    if [ -n "$TIMELINE_PID" ]; then kill "$TIMELINE_PID" 2>/dev/null || true; wait "$TIMELINE_PID" 2>/dev/null || true; TIMELINE_PID=; fi
    after=$(cpu_busy)
    cpu=$(cpu_percent "$before" "$after")
    agents_cpu1=$(proc_cpu "${agent_pids[@]}"); sn_cpu1=$(proc_cpu $sn_pid); reg_cpu1=$(proc_cpu "$reg_pid")
    sn_up=$(($(tx_bytes sn) - sn_before))
    nodes_up=$((-nodes_before))
    for ((i = 1; i <= n; i++)); do nodes_up=$((nodes_up + $(tx_bytes "n$i"))); done
    # The registry writes a blob's access-log line after the response: wait (5 s at most)
    # for at least the GETs this system must have made.
    case "$system" in direct) want=$((n * $(echo "$BLOBS" | wc -w))) ;; *) want=$(echo "$BLOBS" | wc -w) ;; esac
    for _ in $(seq 1 50); do [ "$(upstream_blob_gets "$mark")" -ge "$want" ] && break; sleep 0.1; done
    bytes=$(upstream_bytes "$mark")
    gets=$(upstream_blob_gets "$mark")
    read -r slowest median < <(stats)
    ratio=$(awk -v b="$bytes" -v s="$IMAGE_BYTES" 'BEGIN {printf "%.3f", b / s}')
    # Agents: per GiB delivered to their clients plus uploaded to peers; the supernode and the
    # registry: per GiB they sent.
    agents_g=-; sn_g=-
    [ "${#agent_pids[@]}" -gt 0 ] && agents_g=$(per_gib "$agents_cpu0" "$agents_cpu1" $((n * IMAGE_BYTES + nodes_up)))
    [ -n "$sn_pid" ] && sn_g=$(per_gib "$sn_cpu0" "$sn_cpu1" "$sn_up")
    # Per GiB of the agents' figure (delivered to clients plus uploaded), or of the registry's.
    sirq_g=$(softirq_gib "$before" "$after" $([ "${#agent_pids[@]}" -gt 0 ] && echo $((n * IMAGE_BYTES + nodes_up)) || echo "$bytes"))
    reg_g=$(per_gib "$reg_cpu0" "$reg_cpu1" "$bytes")
    printf '%-4s %-11s %9s %9s %13.1f %8s %10.1f %10.1f %5s %8s %12s %12s %12s\n' "$n" "$system" "$slowest" "$median" \
      "$(awk -v b="$bytes" 'BEGIN {print b / 1048576}')" "$ratio" \
      "$(awk -v b="$sn_up" 'BEGIN {print b / 1048576}')" "$(awk -v b="$nodes_up" 'BEGIN {print b / 1048576}')" \
      "$cpu" "$tmin" "$agents_g" "$sn_g" "$reg_g" >>"$TABLE"
    tail -1 "$TABLE" >&2
    if [ "$system" = layerswarm ]; then
      # The chunk sizes the supernode chose below its largest (it logs only those), so that a
      # slow run can be told apart from one whose blobs were sized differently.
      sized=$(sed -n 's/.*swarm: blob of [0-9]* bytes in chunks of \([0-9]*\) KiB.*/\1/p' "$WORK/supernode-$n.log" |
        sort -n | uniq -c | awk '{printf "%s%d in %d KiB chunks", (NR > 1 ? ", " : ""), $1, $2}')
      log "blobs sized below the largest chunk ($((CHUNK_BYTES >> 10)) KiB): ${sized:-none}"
    fi
    [ "$FAILED" = 0 ] || { log "$system: $FAILED of $n pulls failed (logs in $WORK)"; status=1; }
    if [ -n "$CHECK" ] && [ "$system" = layerswarm ]; then
      for ((i = 1; i <= n; i++)); do
        for d in $BLOBS; do
          [ -s "$WORK/out-$system-$n-n$i/blobs/sha256/${d#sha256:}" ] ||
            { log "node $i lacks $d"; status=1; }
        done
      done
      nblobs=$(echo "$BLOBS" | wc -w)
      [ "$gets" = "$nblobs" ] || { log "upstream served $gets blob GETs for $nblobs blobs"; status=1; }
      for ((i = 1; i <= n; i++)); do
        grep -q "source=swarm" "$WORK/agent-$n-$i.log" || { log "node $i got nothing from the swarm"; status=1; }
      done
    fi
    if [ -n "$LATE" ] && [ "$system" = layerswarm ]; then late_joiners "$n"; fi
    # Peak RSS of the agents (largest) before they stop.
    rss=-
    if [ "$system" = layerswarm ]; then
      rss=$(for pid in "${started[@]:1}"; do awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null; done |
        sort -n | tail -1 | awk '{printf "%.0f", $1 / 1024}')
    fi
    sed -i "\$ s/\$/ $(printf '%9s' "$rss")/" "$TABLE"
    for pid in "${started[@]}"; do stop_pid "$pid"; done
    # Redundant share of what the agents received from peers (their exit lines: libtorrent's
    # counters of end-game duplicates and late answers).
    if [ "$system" = layerswarm ]; then
      red=$(cat "$WORK"/agent-"$n"-[0-9]*.log 2>/dev/null | sed -n 's/.*swarm: payload received \([0-9]*\) bytes (\([0-9]*\) redundant.*/\1 \2/p' |
        awk '{r += $1; d += $2} END {if (r > 0) printf "%.1f%%", 100 * d / r; else print "-"}')
      sed -i "\$ s/\$/ $(printf '%9s' "$red")/" "$TABLE"
    else
      sed -i "\$ s/\$/ $(printf '%9s' -)/" "$TABLE"
    fi
    sed -i "\$ s/\$/ $(printf '%10s' "$sirq_g")/" "$TABLE"
    # Peak descriptors of the agents (largest) during the rollout, sampled every 0.5 s.
    sed -i "\$ s/\$/ $(printf '%9s' "$(cat "$WORK/fds-$n")")/" "$TABLE"
  done
  stop_pid "${PIDS[0]}"  # the upstream of this N
  PIDS=()
  net_down
done
echo
echo "image $((IMAGE_BYTES / 1048576)) MiB ($LAYERS layers), links $RATE Mbit/s, chunk $((CHUNK_BYTES >> 10)) KiB, piece $PIECE KiB, $(nproc) CPUs"
cat "$TABLE"
if [ -s "$LATE_TABLE" ]; then
  echo
  echo "late joiners (node 1 with an empty cache, alone, after the rollout):"
  printf '%-4s %-9s %9s %16s %16s %10s\n' N after pull_s from_sn_MiB from_peers_MiB peer_share
  cat "$LATE_TABLE"
fi
mkdir -p "$ROOT/build"
cp "$TABLE" "$ROOT/build/swarm-bench-$(date +%Y%m%d-%H%M%S).txt"
exit "$status"
