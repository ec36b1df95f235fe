#!/usr/bin/env bash
# The supernode's tracker under the announce load of a large site, on loopback: wrk plays
# AGENTS agents announcing seeds of SWARMS chunk torrents (every request a different swarm and
# peer, compact answers of up to 50 peers), the supernode pinned to one core and wrk to the
# other. Prints the sustained announces/s next to what such a site needs:
#   steady state     idle caches seed nothing (agents/seeder.h): the only requests are the
#                    demand-feed long polls, one per agent per 10 s
#   worst case       every agent at swarm.max_seeding_blobs (64) loaded blobs of 10 chunks,
#                    each chunk re-announcing every seed interval (60 s)
#   rollout          every agent downloading a 240 MiB image (60 chunk torrents) at once,
#                    announcing every 5 s
#   benchmarks/tracker_load.sh [AGENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
AGENTS=${1:-1000}
SECONDS_RUN=${2:-10}
SWARMS=20000
scripts/setup.sh --bench >/dev/null
scripts/build.sh release >/dev/null
source scripts/lib.sh
ls_workdir layerswarm-tracker
TOKEN=tracker-load-token
echo "$TOKEN" >"$WORK/token"
taskset -c 0 "$ROOT/build/supernode/layerswarm-supernode" --listen 127.0.0.1:0 \
  --data-dir "$WORK/sn-data" --upstream http://127.0.0.1:9 --token-file "$WORK/token" \
  --p2p-listen 127.0.0.1:0 >"$WORK/supernode.log" 2>&1 &
SN_PID=$!
PIDS+=($SN_PID)
ls_wait_log "$WORK/supernode.log" "listening on"
SN=$(ls_listening "$WORK/supernode.log")
cat >"$WORK/announce.lua" <<LUA
math.randomseed(7)
local hashes = {}
for i = 1, $SWARMS do
  local t = {}
  for j = 1, 20 do t[j] = string.format("%%%02X", math.random(0, 255)) end
  hashes[i] = table.concat(t)
end
local n = 0
request = function()
  n = n + 1
  local agent = n % $AGENTS
  local swarm = (n * 7919) % $SWARMS + 1
  local path = "/announce?info_hash=" .. hashes[swarm] ..
    "&peer_id=-LS0100-" .. string.format("%012d", agent) ..
    "&port=" .. (10000 + agent) ..
    "&uploaded=0&downloaded=0&left=0&compact=1&numwant=50&event=&token=$TOKEN"
  return wrk.format("GET", path)
end
response = function(status, headers, body)
  if status ~= 200 or body:find("failure") then error("bad announce answer: " .. body) end
end
LUA
cpu0=$(awk '{print $14 + $15}' "/proc/$SN_PID/stat")
taskset -c 1 wrk -t1 -c64 -d"${SECONDS_RUN}s" -s "$WORK/announce.lua" "http://$SN" >"$WORK/wrk.txt"
cpu1=$(awk '{print $14 + $15}' "/proc/$SN_PID/stat")
rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/wrk.txt")
errors=$(grep -c "Non-2xx\|Socket errors" "$WORK/wrk.txt" || true)
cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v t="$SECONDS_RUN" \
  'BEGIN {printf "%.0f", 100 * (b - a) / hz / t}')
steady=$(awk -v a="$AGENTS" 'BEGIN {printf "%.0f", a / 10}')
worst=$(awk -v a="$AGENTS" 'BEGIN {printf "%.0f", a * 64 * 10 / 60}')
rollout=$(awk -v a="$AGENTS" 'BEGIN {printf "%.0f", a * 60 / 5}')
echo
echo "tracker load: $AGENTS agents, $SWARMS swarms, ${SECONDS_RUN}s, supernode on one core"
printf '%-34s %12s\n' case "requests/s"
printf '%-34s %12s\n' "sustained (wrk, 64 connections)" "$rps"
printf '%-34s %12s\n' "supernode CPU during the run" "$cpu%"
printf '%-34s %12s\n' "needed: steady state (idle caches)" "$steady"
printf '%-34s %12s\n' "needed: worst case (64 blobs each)" "$worst"
printf '%-34s %12s\n' "needed: all $AGENTS in one rollout" "$rollout"
[ "$errors" = 0 ] || { echo "wrk reported errors:"; cat "$WORK/wrk.txt"; exit 1; }
