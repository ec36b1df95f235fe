#!/usr/bin/env bash
# An agent whose cache holds as many chunks as 50 GiB in 4 MiB chunks (12,800), without 50 GiB
# of bytes: the supernode cuts blobs into 16 KiB chunks, and an image of 50 layers of 4 MiB
# (200 MiB) becomes 12,800 chunk torrents. Measures agent A (descriptors, RSS, CPU, loaded
# torrents from its /metrics) while it pulls the image, once it is idle, after a restart on the
# same cache, and while agent B pulls the image from it. Budgets (docs/benchmarks.md "Many
# chunks, no descriptors while idle"): <= 256 descriptors, <= 64 MiB RSS, <= 0.5% of a core idle.
# At the end, the supernode's own figures; with SN_IDLE (its swarm.seed_idle, e.g. 30s) it also
# withdraws every blob and the table shows its memory after that.
#   benchmarks/many_chunks.sh [LAYERS]     (default 50; KEEP=1 keeps the logs)
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERS=${1:-50}
IDLE_SECONDS=${IDLE_SECONDS:-60}
scripts/setup.sh >/dev/null
scripts/build.sh release >/dev/null
AGENT_BIN=$PWD/build/agent/layerswarm-agent
SUPERNODE_BIN=$PWD/build/supernode/layerswarm-supernode
source scripts/lib.sh
ls_workdir layerswarm-many
log() { echo "many_chunks: $*" >&2; }
TCK=$(getconf CLK_TCK)

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() {  # metric ADDRESS NAME (the supernode's needs the token: it is sent to both)
  curl -sf -H "Authorization: Bearer $(cat "$WORK/token")" "http://$1/metrics" |
    awk -v n="$2" '$1 == n {print $2; exit}'
}
# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do "$@" && return 0; sleep 0.2; done
  log "timed out after $secs s waiting for $what"
  return 1
}
# sample_torrents ADDRESS FILE: the most chunk torrents loaded, sampled every 200 ms (background).
sample_torrents() {
  local addr=$1 file=$2 max=0 n
  for _ in $(seq 1 6000); do
    n=$(metric "$addr" layerswarm_swarm_torrents || true)
    [ -n "$n" ] && [ "${n%.*}" -gt "$max" ] && max=${n%.*} && echo "$max" >"$file"
    sleep 0.2
  done
}
ROWS=()
# The table, at exit (a failed wait still prints what was measured before it).
ls_on_cleanup() {
  echo
  echo "agent A, ${CHUNKS:-?} chunk torrents of 16 KiB ($LAYERS layers of 4 MiB); budgets: <= 256" \
    "descriptors, <= 64 MiB RSS, <= 0.5% of a core idle"
  printf '%-34s %10s %10s %12s %10s  %s\n' phase descriptors "RSS MiB" CPU torrents notes
  printf '%s\n' "${ROWS[@]}"
}
row() { ROWS+=("$(printf '%-34s %10s %10s %12s %10s  %s' "$@")"); }

log "generating $LAYERS layers of 4 MiB"
layer_args=()
for ((i = 0; i < LAYERS; i++)); do layer_args+=(--layer 4M); done
python3 scripts/mkimage.py "$WORK/image" --tag latest "${layer_args[@]}" --label many \
  >"$WORK/image.json"
ls_start_registry upstream
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://$REGISTRY/many/img:v1"
CHUNKS=$(python3 -c '
import json, sys
print(sum((b["size"] + 16383) // 16384 for b in json.load(open(sys.argv[1]))["blobs"]))' \
  "$WORK/image.json")
log "$CHUNKS chunks of 16 KiB"

echo "many-chunks-token" >"$WORK/token"
SN_IDLE=${SN_IDLE:-}
echo "{\"swarm\": {\"chunk_size\": 16384, \"piece_size\": 16384${SN_IDLE:+, \"seed_idle\": \"$SN_IDLE\"}}}" \
  >"$WORK/supernode.json"
"$SUPERNODE_BIN" --listen 127.0.0.1:0 --p2p-listen 127.0.0.1:0 --data-dir "$WORK/supernode" \
  --upstream "http://$REGISTRY" --token-file "$WORK/token" --config "$WORK/supernode.json" \
  >"$WORK/supernode.log" 2>&1 &
SN_PID=$!
PIDS+=($SN_PID)
ls_wait_log "$WORK/supernode.log" "listening on"
SUPERNODE=$(ls_listening "$WORK/supernode.log")
echo '{"swarm": {"seed_idle": "5s"}}' >"$WORK/agent.json"
start_agent() {  # start_agent NAME LOG: sets AGENT_PID and AGENT_ADDR
  "$AGENT_BIN" --listen 127.0.0.1:0 --p2p-listen 127.0.0.1:0 --data-dir "$WORK/$1" \
    --upstream "http://$REGISTRY" --supernode "http://$SUPERNODE" --token-file "$WORK/token" \
    --config "$WORK/agent.json" >"$WORK/$2.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=($AGENT_PID)
  ls_wait_log "$WORK/$2.log" "listening on"
  AGENT_ADDR=$(ls_listening "$WORK/$2.log")
}
pull() {  # pull ADDRESS DEST: seconds
  local t0 t1
  t0=$(date +%s.%N)
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$1/many/img:v1" "oci:$2:latest"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}'
}
# idle_row LABEL: A's descriptors, RSS and CPU over IDLE_SECONDS, with nothing asked of it,
# after a first window of SETTLE_SECONDS (libtorrent still tells the tracker of the torrents
# just removed), whose CPU is in the notes.
SETTLE_SECONDS=${SETTLE_SECONDS:-30}
percent() { awk -v d="$1" -v t="$TCK" -v s="$2" 'BEGIN {printf "%.2f%%", 100 * d / t / s}'; }
idle_row() {
  local t0 t1 t2
  t0=$(ticks "$A_PID")
  sleep "$SETTLE_SECONDS"  # a measuring window, not a synchronisation
  t1=$(ticks "$A_PID")
  sleep "$IDLE_SECONDS"  # the measuring window
  t2=$(ticks "$A_PID")
  row "$1" "$(fds "$A_PID")" "$(rss_mib "$A_PID")" "$(percent $((t2 - t1)) "$IDLE_SECONDS")" \
    "$(metric "$A_ADDR" layerswarm_swarm_torrents)" \
    "first $SETTLE_SECONDS s $(percent $((t1 - t0)) "$SETTLE_SECONDS"); cache $(metric "$A_ADDR" layerswarm_cache_bytes) bytes"
}
no_torrents() { [ "$(metric "$A_ADDR" layerswarm_swarm_torrents)" = 0 ]; }

start_agent a a
A_PID=$AGENT_PID A_ADDR=$AGENT_ADDR
row "A started, empty cache" "$(fds "$A_PID")" "$(rss_mib "$A_PID")" - "$(metric "$A_ADDR" layerswarm_swarm_torrents)" ""
ls_fd_peak "$WORK/peak-a" 0.05 "$A_PID"
sampler=$LS_FD_PEAK_PID
log "A pulls the image ($CHUNKS chunk torrents)"
t0=$(ticks "$A_PID")
secs=$(pull "$A_ADDR" "$WORK/pulled-a")
t1=$(ticks "$A_PID")
kill "$sampler" 2>/dev/null || true
row "A pulls (peak)" "$(cat "$WORK/peak-a" 2>/dev/null || echo -)" "$(hwm_mib "$A_PID")" \
  "$(awk -v d=$((t1 - t0)) -v t="$TCK" 'BEGIN {printf "%.1f CPU-s", d / t}')" \
  "$(metric "$A_ADDR" layerswarm_swarm_torrents)" "pull $secs s"
wait_for "A's chunk torrents to unload after seed_idle" 300 no_torrents
idle_row "A idle, cache full"

log "A restarts on the same cache"
kill -TERM "$A_PID"
wait_for "A to exit" 60 bash -c "! kill -0 $A_PID 2>/dev/null"
t0=$(date +%s.%N)
start_agent a a-restarted
A_PID=$AGENT_PID A_ADDR=$AGENT_ADDR
ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
# The supernode's demand feed still lists the blobs A pulled (for 10 minutes): the restarted A
# loads them again, up to its caps, and unloads them after seed_idle.
ls_fd_peak "$WORK/peak-a1" 0.05 "$A_PID"
sampler=$LS_FD_PEAK_PID
sample_torrents "$A_ADDR" "$WORK/torrents-a1" &
tsampler=$!
t0=$(ticks "$A_PID")
wait_for "A to load the blobs of the demand feed" 60 grep -q "seeding on demand" "$WORK/a-restarted.log"
wait_for "A's chunk torrents to unload after seed_idle" 300 no_torrents
t1=$(ticks "$A_PID")
kill "$sampler" "$tsampler" 2>/dev/null || true
loaded=$(cat "$WORK/torrents-a1" 2>/dev/null || echo -)
row "A restarted (peak)" "$(cat "$WORK/peak-a1" 2>/dev/null || echo -)" "$(hwm_mib "$A_PID")" \
  "$(awk -v d=$((t1 - t0)) -v t="$TCK" 'BEGIN {printf "%.1f CPU-s", d / t}')" "$loaded" \
  "ready after $ready s; the demand feed's blobs loaded and unloaded: $(grep -c 'seeding on demand' "$WORK/a-restarted.log") loads, $(grep -c 'too many chunk torrents' "$WORK/a-restarted.log") over the cap"
idle_row "A idle after the restart"

log "B pulls the image; A loads its chunks on demand"
start_agent b b
B_ADDR=$AGENT_ADDR
ls_fd_peak "$WORK/peak-a2" 0.05 "$A_PID"
sampler=$LS_FD_PEAK_PID
sample_torrents "$A_ADDR" "$WORK/torrents-a2" &
tsampler=$!
t0=$(ticks "$A_PID")
secs=$(pull "$B_ADDR" "$WORK/pulled-b")
t1=$(ticks "$A_PID")
kill "$sampler" "$tsampler" 2>/dev/null || true
# The swarm's byte counters are refreshed by a scrape and read by the next one.
metric "$B_ADDR" layerswarm_swarm_received_bytes_total >/dev/null
sleep 1  # libtorrent answers the refresh asynchronously; not a synchronisation of the test
from_swarm=$(metric "$B_ADDR" layerswarm_swarm_received_bytes_total)
row "A seeds B (peak)" "$(cat "$WORK/peak-a2" 2>/dev/null || echo -)" "$(hwm_mib "$A_PID")" \
  "$(awk -v d=$((t1 - t0)) -v t="$TCK" 'BEGIN {printf "%.1f CPU-s", d / t}')" \
  "$(cat "$WORK/torrents-a2" 2>/dev/null || echo -)" \
  "B's pull $secs s, $from_swarm bytes from the swarm, A sent $(metric "$A_ADDR" layerswarm_swarm_sent_bytes_total)"
wait_for "A's chunk torrents to unload again" 300 no_torrents
idle_row "A idle again"

# The supernode: its peak, and (with SN_IDLE) its memory once it has withdrawn every blob. The
# heap is handed back at the check after a withdrawal (one a minute): a window of 65 s.
row "supernode (peak)" - "$(hwm_mib "$SN_PID")" "$(awk -v d="$(ticks "$SN_PID")" -v t="$TCK" 'BEGIN {printf "%.1f CPU-s", d / t}')" \
  - "now $(fds "$SN_PID") descriptors, $(rss_mib "$SN_PID") MiB; $(grep -c 'withdrawn' "$WORK/supernode.log" || true) withdrawals so far"
if [ -n "$SN_IDLE" ]; then
  sn_unloaded() { [ "$(metric "$SUPERNODE" layerswarm_swarm_torrents)" = 0 ]; }
  wait_for "the supernode to withdraw every blob" 600 sn_unloaded
  sleep 65  # the measuring window: the next check trims the heap
  row "supernode, all withdrawn" "$(fds "$SN_PID")" "$(rss_mib "$SN_PID")" - \
    "$(metric "$SUPERNODE" layerswarm_swarm_torrents)" "$(grep -c 'withdrawn' "$WORK/supernode.log" || true) withdrawals"
fi
