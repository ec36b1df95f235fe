#!/usr/bin/env bash
# The warm manifest-by-tag path alone, quicker than benchmarks/run.sh: one agent (default
# config, a log line per request) vs nginx serving the same bytes as a static file with
# `tcp_nopush on` (its faster configuration here; run.sh measures both), wrk -t2 -c32 for 5 s
# each, interleaved rounds. Prints each round and the medians. Needs root (nginx's user switch)
# and scripts/setup.sh --bench.
#   benchmarks/manifests.sh [ROUNDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
scripts/build.sh release >/dev/null
source scripts/lib.sh
ls_workdir layerswarm-manifests
median() { python3 -c 'import statistics,sys; print("%.0f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
ls_start_registry upstream
python3 scripts/mkimage.py "$WORK/image" --layer 1M --label bench >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://$REGISTRY/bench/image:latest"
build/agent/layerswarm-agent --listen 127.0.0.1:0 --data-dir "$WORK/agent-data" \
  --upstream "http://$REGISTRY" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
ls_wait_log "$WORK/agent.log" "listening on"
AGENT=$(ls_listening "$WORK/agent.log")
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'
mkdir -p "$WORK/www"
curl -sf -H "$ACCEPT" "http://$AGENT/v2/bench/image/manifests/latest" -o "$WORK/www/latest"
ls_start_nginx nginx "$WORK/www" application/vnd.oci.image.manifest.v1+json on
PORT=$NGINX_PORT
rps() { wrk -t2 -c32 -d5s -H "$ACCEPT" "$1" | awk '/Requests\/sec/ {print $2}'; }
RA=(); RN=()
for i in $(seq 1 "$ROUNDS"); do
  RA+=("$(rps "http://$AGENT/v2/bench/image/manifests/latest")")
  RN+=("$(rps "http://127.0.0.1:$PORT/latest")")
  echo "round $i: agent ${RA[-1]} req/s, nginx ${RN[-1]} req/s"
done
A=$(median "${RA[@]}"); N=$(median "${RN[@]}")
echo "medians: agent $A req/s, nginx $N req/s, ratio $(awk -v a="$A" -v n="$N" 'BEGIN {printf "%.2fx", a / n}') (goal >= 0.5x)"
