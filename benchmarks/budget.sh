#!/usr/bin/env bash
# The disk budget at the issue's scale: an agent with cache.max_size 100 MiB pulls three
# images of ~100 MiB each (two 50 MiB layers) one after another with skopeo. Prints, per pull,
# whether it succeeded, the cache's blob bytes after it, the most the blob directory held
# while it ran (sampled every 20 ms), and the bound: the budget plus the largest blob in
# flight. (Crash resume is measured by tests/integration/lifecycle_test.cpp: five SIGKILLs
# during a 200 MiB download.)
#   benchmarks/budget.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh >/dev/null
scripts/build.sh release >/dev/null
AGENT_BIN=$ROOT/build/agent/layerswarm-agent
source scripts/lib.sh
ls_workdir layerswarm-budget
log() { echo "budget: $*" >&2; }

ls_start_registry upstream
BUDGET=$((100 << 20))
for i in 1 2 3; do
  python3 scripts/mkimage.py "$WORK/img$i" --layer 50M --layer 50M --seed "$i" --label "img$i" \
    >"$WORK/img$i.json"
  skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/img$i:latest" \
    "docker://$REGISTRY/budget/img$i:v1"
done
echo '{"cache": {"max_size": "100MiB"}}' >"$WORK/agent.json"
"$AGENT_BIN" --listen 127.0.0.1:0 --data-dir "$WORK/agent-data" --upstream "http://$REGISTRY" \
  --config "$WORK/agent.json" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=($AGENT_PID)
ls_wait_log "$WORK/agent.log" "listening on"
AGENT=$(ls_listening "$WORK/agent.log")
blob_bytes() { find "$WORK/agent-data/blobs" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
largest=$(python3 -c 'import json,sys; print(max(b["size"] for i in (1,2,3) for b in json.load(open(sys.argv[1] + "/img%d.json" % i))["blobs"]))' "$WORK")
bound=$((BUDGET + largest))

printf '%-6s %-8s %16s %18s %22s %8s\n' pull result "cache MiB after" "max MiB during" "bound MiB (budget+blob)" within >"$WORK/table.txt"
for i in 1 2 3; do
  : >"$WORK/samples"
  ( for _ in $(seq 1 15000); do blob_bytes >>"$WORK/samples"; sleep 0.02; done ) &
  sampler=$!
  if skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$AGENT/budget/img$i:v1" \
      "oci:$WORK/pulled$i:latest" 2>"$WORK/pull$i.log"; then result=ok; else result=FAILED; fi
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  after=$(blob_bytes)
  max=$(sort -n "$WORK/samples" | tail -1)
  max=${max:-0}
  [ "$max" -lt "$after" ] && max=$after
  within=yes
  [ "$max" -le "$bound" ] || within=NO
  printf '%-6s %-8s %16.1f %18.1f %22.1f %8s\n' "$i" "$result" \
    "$(awk -v b="$after" 'BEGIN {print b / 1048576}')" "$(awk -v b="$max" 'BEGIN {print b / 1048576}')" \
    "$(awk -v b="$bound" 'BEGIN {print b / 1048576}')" "$within" >>"$WORK/table.txt"
done
evicted=$(grep -c "cache eviction" "$WORK/agent.log" || true)
echo
cat "$WORK/table.txt"
echo "evictions logged: $evicted; budget $((BUDGET >> 20)) MiB, largest blob $((largest >> 20)) MiB"
