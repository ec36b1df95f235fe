#!/usr/bin/env bash
# The main job, end to end on one machine: installs what is missing, builds, starts a local
# upstream registry (docker-registry) holding a generated image, starts layerswarm-agent in
# front of it, pulls the image through the agent twice with skopeo, and prints where the
# bytes came from (upstream, then cache) with timings.
#   scripts/demo.sh            (KEEP=1 keeps the work directory for a look at the logs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh
scripts/build.sh release >/dev/null
echo "demo: built $(build/agent/layerswarm-agent --version)"

source scripts/lib.sh
ls_workdir layerswarm-demo

echo "demo: generating an image (busybox + 3 random layers, ~65 MiB)"
python3 scripts/mkimage.py "$WORK/image" --tag latest --busybox /bin/busybox \
  --layer 40M --layer 20M --layer 5M --label demo >"$WORK/image.json"

ls_start_registry upstream
UPSTREAM=$REGISTRY
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/image:latest" \
  "docker://$UPSTREAM/demo/app:latest"
echo "demo: upstream registry at $UPSTREAM holds demo/app:latest"

build/agent/layerswarm-agent --listen 127.0.0.1:0 --data-dir "$WORK/agent" \
  --upstream "http://$UPSTREAM" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
ls_wait_log "$WORK/agent.log" "listening on"
AGENT=$(ls_listening "$WORK/agent.log")
echo "demo: layerswarm-agent at $AGENT, cache in $WORK/agent"
echo

# Blob responses in agent log lines from line $1 on, for source $2: "count bytes".
from_source() {
  tail -n +"$1" "$WORK/agent.log" | awk -v src="source=$2" '
    /\/blobs\// && index($0, src " ") {
      n++; for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) { split($i, a, "="); s += a[2] }
    }
    END { print n + 0, s + 0 }'
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

printf ' %-5s %-9s %-26s %-26s\n' pull time "from upstream" "from cache"
for i in 1 2; do
  mark=$(($(wc -l <"$WORK/agent.log") + 1))
  start=$(date +%s.%N)
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$AGENT/demo/app:latest" \
    "dir:$WORK/pull$i"
  end=$(date +%s.%N)
  read -r up_n up_b < <(from_source "$mark" upstream)
  read -r cache_n cache_b < <(from_source "$mark" cache)
  printf ' %-5s %-9s %-26s %-26s\n' "$i" "$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f s", b - a}')" \
    "$(mib "$up_b") ($up_n blobs)" "$(mib "$cache_b") ($cache_n blobs)"
done
echo
gets=$(awk '/"GET \/v2\/demo\/app\/blobs\// {n++} END {print n + 0}' "$WORK/upstream.log")
echo "upstream registry served $gets blob GETs in all: the second pull never reached it."
if diff -r "$WORK/pull1" "$WORK/pull2" >/dev/null; then
  echo "both pulls are byte-identical ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$WORK/image.json"))."
else
  echo "demo: the two pulls differ!" >&2
  exit 1
fi
echo "agent log lines (one per request):"
grep -E '/(manifests|blobs)/' "$WORK/agent.log" | sed 's/^/  /' | cut -c1-160
