#!/usr/bin/env bash
# Measures layerswarm-agent next to its baselines, in the same run, on loopback:
#   1. warm GET of a cached 1 GiB blob        vs nginx serving the same file with sendfile
#      cold GET of a 1 GiB blob               vs the larger of a direct GET and its SHA-256
#   2. cold pull of a 200 MiB image (skopeo)  vs the same pull straight from the upstream
#   3. warm manifest-by-tag requests/s (wrk)  vs docker-registry in proxy mode, and vs nginx
#      serving the same bytes as a static file (its faster sendfile configuration)
#   4. agent peak RSS (/usr/bin/time -v): idle, and during a 1 GiB pull
# Prints a table and saves it as build/benchmark-<date>.txt. Needs root for nginx's user
# switch; installs what is missing (scripts/setup.sh --bench).
#   benchmarks/run.sh [RUNS]     (RUNS: repetitions per timed case, default 9)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-9}
scripts/setup.sh --bench >/dev/null
scripts/build.sh release >/dev/null
AGENT_BIN=$ROOT/build/agent/layerswarm-agent

source scripts/lib.sh
ls_workdir layerswarm-bench
log() { echo "bench: $*" >&2; }
median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }

# start_agent NAME: starts an agent (default log level: a line per request) under
# /usr/bin/time -v; sets AGENT (host:port) and AGENT_PID (the time process).
start_agent() {
  local name=$1
  /usr/bin/time -v -o "$WORK/$name.time" "$AGENT_BIN" --listen 127.0.0.1:0 \
    --data-dir "$WORK/$name-data" --upstream "http://$UPSTREAM" >"$WORK/$name.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=($AGENT_PID)
  ls_wait_log "$WORK/$name.log" "listening on"
  AGENT=$(ls_listening "$WORK/$name.log")
}
stop_agent() {  # SIGTERM to the agent (the child of time); wait for time to report
  pkill -TERM -P "$AGENT_PID" || true
  wait "$AGENT_PID" 2>/dev/null || true
}
peak_rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

push_blob() {  # push_blob REGISTRY REPO FILE: prints the digest
  local reg=$1 repo=$2 file=$3 digest loc
  digest=sha256:$(python3 -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$file")
  loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/$repo/blobs/uploads/" |
    awk 'tolower($1) == "location:" {print $2}' | tr -d '\r')
  loc=${loc#http://$reg}
  curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$file" \
    "http://$reg$loc&digest=$digest" -o /dev/null
  echo "$digest"
}

log "work dir $WORK, $RUNS runs per timed case, $(nproc) CPUs"
ls_start_registry upstream
UPSTREAM=$REGISTRY

# ---------------------------------------------------------------------------------------
# 4a. idle RSS: start, answer a ping, stop.
start_agent idle
curl -sf "http://$AGENT/v2/" -o /dev/null
stop_agent
RSS_IDLE=$(peak_rss_mib "$WORK/idle.time")
log "idle peak RSS $RSS_IDLE MiB"

# ---------------------------------------------------------------------------------------
# 1 + 4b. A 1 GiB blob: cold pull through a fresh agent (RSS), then warm GETs vs nginx.
log "making and pushing a 1 GiB blob"
head -c 1G /dev/urandom >"$WORK/big.bin"
BIG=$(push_blob "$UPSTREAM" bench/big "$WORK/big.bin")
# The cold path's one unavoidable step is the digest: a cold GET through a fresh agent vs a
# direct GET from the upstream and one core's SHA-256 of the same bytes (openssl, the file in
# the page cache), interleaved, medians of 5.
# Also timed, for the record: writing the same GiB into a new file (the cache's write into
# fresh page-cache pages; on this VM a first touch of guest memory makes that step costly).
CB=(); CD=(); CH=(); CW=(); CU=(); CS=(); CM=()
# The machine's busy CPU-s so far (every process and the kernel, not the hypervisor's steal;
# /proc/stat counts 1/100 s).
busy_cpu() { awk '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100}' /proc/stat; }
for i in $(seq 1 5); do
  CD+=("$(curl -sf -o /dev/null -w '%{time_total}' "http://$UPSTREAM/v2/bench/big/blobs/$BIG")")
  t=$(now); openssl dgst -sha256 "$WORK/big.bin" >/dev/null; CH+=("$(since "$t")")
  t=$(now); dd if="$WORK/big.bin" of="$WORK/write-test.bin" bs=1M status=none; CW+=("$(since "$t")")
  rm -f "$WORK/write-test.bin"
  start_agent "coldbig$i"
  m=$(busy_cpu)
  CB+=("$(curl -sf -o /dev/null -w '%{time_total}' "http://$AGENT/v2/bench/big/blobs/$BIG")")
  CM+=("$(awk -v a="$m" -v b="$(busy_cpu)" 'BEGIN {printf "%.2f", b - a}')")
  stop_agent
  # The agent's CPU for the whole cold GET (start-up is ~0.01 s): user is mostly the SHA-256,
  # system mostly the kernel's copies and the page cache's new pages.
  CU+=("$(awk -F': ' '/User time/ {print $2}' "$WORK/coldbig$i.time")")
  CS+=("$(awk -F': ' '/System time/ {print $2}' "$WORK/coldbig$i.time")")
  rm -rf "$WORK/coldbig$i-data"
  log "cold 1 GiB $i: agent ${CB[-1]} s, direct ${CD[-1]} s, sha256 ${CH[-1]} s"
done
rm -f "$WORK/big.bin"
COLD_BIG=$(median "${CB[@]}")
COLD_BIG_DIRECT=$(median "${CD[@]}")
COLD_BIG_HASH=$(median "${CH[@]}")
COLD_BIG_WRITE=$(median "${CW[@]}")
# The shortest a cold GET could take with every CPU busy for all of it: the CPU-s it took
# (registry, agent, curl and the kernel together) spread over this machine's CPUs.
COLD_BIG_PACKED=$(awk -v c="$(median "${CM[@]}")" -v n="$(nproc)" 'BEGIN {printf "%.3f", c / n}')
COLD_BIG_BOUND=$(awk -v a="$COLD_BIG_DIRECT" -v b="$COLD_BIG_HASH" 'BEGIN {print (a > b) ? a : b}')
# This machine's floor for any cache: the cached copy has to go into new page-cache pages too
# (on this VM a first touch of guest memory; docs/benchmarks.md "The cold path").
COLD_BIG_FLOOR=$(awk -v a="$COLD_BIG_BOUND" -v b="$COLD_BIG_WRITE" 'BEGIN {print (a > b) ? a : b}')
start_agent big
curl -sf "http://$AGENT/v2/bench/big/blobs/$BIG" -o /dev/null

# TCP_CORK halves nginx on loopback (1.5 vs 3.0 GB/s); the agent does not cork.
ls_start_nginx nginx-blob "$WORK/big-data/blobs" application/octet-stream off "sendfile_max_chunk 0;"
HEX=${BIG#sha256:}
# The response completed at the digest check; fsync and rename into the cache follow.
for i in $(seq 1 600); do [ -f "$WORK/big-data/blobs/sha256/${HEX:0:2}/$HEX" ] && break; sleep 0.1; done
NGINX_URL="http://127.0.0.1:$NGINX_PORT/sha256/${HEX:0:2}/$HEX"
AGENT_URL="http://$AGENT/v2/bench/big/blobs/$BIG"
curl -sf "$NGINX_URL" -o /dev/null  # the same file, warm in the page cache for both
# Interleaved (agent, nginx, agent, ...) so that machine noise falls on both alike.
WA=()
WN=()
for i in $(seq 1 $((RUNS + 6))); do
  WA+=("$(curl -sf -o /dev/null -w '%{time_total}' "$AGENT_URL")")
  WN+=("$(curl -sf -o /dev/null -w '%{time_total}' "$NGINX_URL")")
done
WARM_AGENT=$(median "${WA[@]}")
WARM_NGINX=$(median "${WN[@]}")
stop_agent
RSS_BIG=$(peak_rss_mib "$WORK/big.time")
log "warm 1 GiB: agent $WARM_AGENT s, nginx $WARM_NGINX s; peak RSS with a 1 GiB pull $RSS_BIG MiB"
rm -rf "$WORK/big-data"

# ---------------------------------------------------------------------------------------
# 2. Cold pull of a 200 MiB image (4 x 50 MiB layers), through a fresh agent vs direct.
log "making and pushing a 200 MiB image"
python3 scripts/mkimage.py "$WORK/image" --layer 50M --layer 50M --layer 50M --layer 50M \
  --label bench >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://$UPSTREAM/bench/image:latest"
DIRECT=()
VIA=()
for i in $(seq 1 "$RUNS"); do
  rm -rf "$WORK/out"
  t=$(now)
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$UPSTREAM/bench/image:latest" "dir:$WORK/out"
  DIRECT+=("$(since "$t")")
  start_agent "cold$i"
  rm -rf "$WORK/out"
  t=$(now)
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$AGENT/bench/image:latest" "dir:$WORK/out"
  VIA+=("$(since "$t")")
  stop_agent
  rm -rf "$WORK/cold$i-data"
  log "cold pull $i: direct ${DIRECT[-1]} s, through the agent ${VIA[-1]} s"
done
COLD_DIRECT=$(median "${DIRECT[@]}")
COLD_VIA=$(median "${VIA[@]}")

# ---------------------------------------------------------------------------------------
# 3. Warm manifest by tag: the agent vs docker-registry as a pull-through proxy, and vs nginx
# serving the same bytes as a static file, in both of nginx's sendfile configurations (the
# faster one is the baseline). Interleaved rounds, medians.
ls_start_registry proxy "proxy: {remoteurl: \"http://$UPSTREAM\"}"
PROXY=$REGISTRY
start_agent tags
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'
for target in "$AGENT" "$PROXY"; do
  curl -sf -H "$ACCEPT" "http://$target/v2/bench/image/manifests/latest" -o /dev/null
done
mkdir -p "$WORK/www"
curl -sf -H "$ACCEPT" "http://$AGENT/v2/bench/image/manifests/latest" -o "$WORK/www/latest"
declare -A NGX
for nopush in on off; do
  ls_start_nginx "nginx-manifest-$nopush" "$WORK/www" application/vnd.oci.image.manifest.v1+json "$nopush"
  NGX[$nopush]=$NGINX_PORT
done
wrk_rps() {  # wrk_rps URL
  wrk -t2 -c32 -d5s -H "$ACCEPT" "$1" | awk '/Requests\/sec/ {print $2}'
}
RA=(); RN_ON=(); RN_OFF=()
for i in 1 2 3; do
  RA+=("$(wrk_rps "http://$AGENT/v2/bench/image/manifests/latest")")
  RN_ON+=("$(wrk_rps "http://127.0.0.1:${NGX[on]}/latest")")
  RN_OFF+=("$(wrk_rps "http://127.0.0.1:${NGX[off]}/latest")")
done
RPS_AGENT=$(median "${RA[@]}")
RPS_NGINX_ON=$(median "${RN_ON[@]}")
RPS_NGINX_OFF=$(median "${RN_OFF[@]}")
if awk -v a="$RPS_NGINX_ON" -v b="$RPS_NGINX_OFF" 'BEGIN {exit !(a >= b)}'; then
  RPS_NGINX=$RPS_NGINX_ON; NGINX_BEST="tcp_nopush on"
else
  RPS_NGINX=$RPS_NGINX_OFF; NGINX_BEST="tcp_nopush off"
fi
RPS_PROXY=$(wrk_rps "http://$PROXY/v2/bench/image/manifests/latest")
stop_agent
log "manifest by tag: agent $RPS_AGENT req/s, nginx $RPS_NGINX req/s ($NGINX_BEST), registry proxy $RPS_PROXY req/s"

# ---------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
gbps() { awk -v t="$1" 'BEGIN {printf "%.2f GB/s", 1073741824 / t / 1e9}'; }
verdict() { awk -v r="$1" -v op="$2" -v g="$3" 'BEGIN {ok = (op == ">=") ? r >= g : r <= g; print ok ? "met" : "MISSED"}'; }
W_RATIO=$(awk -v a="$WARM_AGENT" -v n="$WARM_NGINX" 'BEGIN {print n / a}')
C_RATIO=$(awk -v a="$COLD_VIA" -v d="$COLD_DIRECT" 'BEGIN {print a / d}')
R_RATIO=$(awk -v a="$RPS_AGENT" -v p="$RPS_PROXY" 'BEGIN {print a / p}')
N_RATIO=$(awk -v a="$RPS_AGENT" -v n="$RPS_NGINX" 'BEGIN {print a / n}')
B_RATIO=$(awk -v a="$COLD_BIG" -v b="$COLD_BIG_BOUND" 'BEGIN {print a / b}')
F_RATIO=$(awk -v a="$COLD_BIG" -v b="$COLD_BIG_FLOOR" 'BEGIN {print a / b}')
P_RATIO=$(awk -v a="$COLD_BIG_PACKED" -v b="$COLD_BIG_BOUND" 'BEGIN {print a / b}')
RESULT="$WORK/table.txt"
{
  echo "layerswarm benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, loopback, medians of $RUNS runs ($((RUNS + 6)) for warm GETs)"
  echo
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' benchmark layerswarm baseline ratio goal result
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "warm GET, cached 1 GiB blob" "$(gbps "$WARM_AGENT")" \
    "nginx sendfile $(gbps "$WARM_NGINX")" "$(printf '%.2fx' "$W_RATIO")" ">= 0.9x" "$(verdict "$W_RATIO" '>=' 0.9)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "cold GET, 1 GiB blob (curl)" "$COLD_BIG s" \
    "max(direct $COLD_BIG_DIRECT, sha256 $COLD_BIG_HASH) s" "$(printf '%.2fx' "$B_RATIO")" "<= 1.1x" "$(verdict "$B_RATIO" '<=' 1.1)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "  same, vs this VM's floor" "$COLD_BIG s" \
    "max(above, new-file write $COLD_BIG_WRITE) s" "$(printf '%.2fx' "$F_RATIO")" "-" "-"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "  same, its CPU-s / $(nproc) CPUs" "$COLD_BIG_PACKED s" \
    "the bound above, $COLD_BIG_BOUND s" "$(printf '%.2fx' "$P_RATIO")" "-" "-"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "cold pull, 200 MiB image (skopeo)" "$COLD_VIA s" \
    "direct from upstream $COLD_DIRECT s" "$(printf '%.2fx' "$C_RATIO")" "<= 1.1x" "$(verdict "$C_RATIO" '<=' 1.1)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "warm manifest by tag (wrk -c32)" "$(printf '%.0f req/s' "$RPS_AGENT")" \
    "registry proxy $(printf '%.0f req/s' "$RPS_PROXY")" "$(printf '%.1fx' "$R_RATIO")" ">= 5x" "$(verdict "$R_RATIO" '>=' 5)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "warm manifest by tag (wrk -c32)" "$(printf '%.0f req/s' "$RPS_AGENT")" \
    "nginx static $(printf '%.0f req/s' "$RPS_NGINX")" "$(printf '%.2fx' "$N_RATIO")" ">= 0.5x" "$(verdict "$N_RATIO" '>=' 0.5)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "agent peak RSS, idle" "$RSS_IDLE MiB" "-" "-" "<= 20 MiB" "$(verdict "$RSS_IDLE" '<=' 20)"
  printf '%-36s %-18s %-28s %-7s %-10s %s\n' "agent peak RSS, 1 GiB pull" "$RSS_BIG MiB" "-" "-" "<= 64 MiB" "$(verdict "$RSS_BIG" '<=' 64)"
  echo
  echo "cold 1 GiB runs (s): agent ${CB[*]}; direct ${CD[*]}; sha256 ${CH[*]}; write into a new file ${CW[*]} (median $COLD_BIG_WRITE)"
  echo "cold 1 GiB agent CPU (s): user ${CU[*]}; system ${CS[*]}; the machine's, all processes: ${CM[*]}"
  echo "warm GET runs (s): agent ${WA[*]}; nginx ${WN[*]}"
  echo "cold pull runs (s): direct ${DIRECT[*]}; through the agent ${VIA[*]}"
  echo "manifest req/s rounds: agent ${RA[*]}; nginx tcp_nopush on ${RN_ON[*]}; off ${RN_OFF[*]} (baseline: $NGINX_BEST)"
} | tee "$RESULT"
mkdir -p "$ROOT/build" && cp "$RESULT" "$ROOT/build/benchmark-$(date -u +%Y%m%d-%H%M).txt"
