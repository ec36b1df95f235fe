#!/usr/bin/env bash
# The main job, end to end on one machine: installs what is missing, builds, starts a local
# upstream registry (docker-registry) holding a generated image, a layerswarm-supernode in
# front of it and three layerswarm-agents behind that; pulls the image through the three
# agents at the same moment with skopeo (then once more through the first), and prints where
# the bytes came from (swarm, supernode, upstream, cache) with timings.
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

# A closed site (docs/security.md): a site CA, the supernode's https certificate and the token;
# peers trade over TLS with member certificates only.
build/supernode/layerswarm-supernode init-site --dir "$WORK/site" --ip 127.0.0.1 >/dev/null
cat >"$WORK/supernode.json" <<JSON
{"tls": {"listen": "127.0.0.1:0", "cert": "$WORK/site/supernode.pem", "key": "$WORK/site/supernode.key"},
 "site": {"ca_cert": "$WORK/site/ca.pem", "ca_key": "$WORK/site/ca.key"}}
JSON
echo "{\"supernode_ca_file\": \"$WORK/site/ca.pem\"}" >"$WORK/agent.json"
build/supernode/layerswarm-supernode --listen 127.0.0.1:0 --p2p-listen 127.0.0.1:0 \
  --data-dir "$WORK/supernode" --upstream "http://$UPSTREAM" --token-file "$WORK/site/token" \
  --config "$WORK/supernode.json" >"$WORK/supernode.log" 2>&1 &
PIDS+=($!)
ls_wait_log "$WORK/supernode.log" "listening on https"
SUPERNODE=$(grep -o 'listening on https://127\.0\.0\.1:[0-9]*' "$WORK/supernode.log" | head -1 |
  grep -o '127\.0\.0\.1:[0-9]*')
echo "demo: layerswarm-supernode at https://$SUPERNODE (tracker and first seed; a closed site: TLS between members)"
AGENTS=()
for a in 1 2 3; do
  build/agent/layerswarm-agent --listen 127.0.0.1:0 --p2p-listen 127.0.0.1:0 \
    --data-dir "$WORK/agent$a" --upstream "http://$UPSTREAM" --supernode "https://$SUPERNODE" \
    --token-file "$WORK/site/token" --config "$WORK/agent.json" --zone "rack-$((a % 2))" \
    >"$WORK/agent$a.log" 2>&1 &
  PIDS+=($!)
  ls_wait_log "$WORK/agent$a.log" "listening on"
  AGENTS+=("$(ls_listening "$WORK/agent$a.log")")
done
echo "demo: three layerswarm-agents at ${AGENTS[*]}"
echo

# Blob responses in agent A's log lines from line $2 on, for source $3: "count bytes".
from_source() {
  tail -n +"$2" "$WORK/agent$1.log" | awk -v src="source=$3" '
    /\/blobs\// && index($0, src " ") {
      n++; for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) { split($i, a, "="); s += a[2] }
    }
    END { print n + 0, s + 0 }'
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
row() {  # row LABEL AGENT MARK SECONDS
  local out=() src n b
  for src in swarm supernode upstream cache; do
    read -r n b < <(from_source "$2" "$3" "$src")
    out+=("$(mib "$b") ($n)")
  done
  printf ' %-14s %-8s %-17s %-17s %-17s %-17s\n' "$1" "$4" "${out[@]}"
}

printf ' %-14s %-8s %-17s %-17s %-17s %-17s\n' pull time "from swarm" "from supernode" \
  "from upstream" "from cache"
marks=()
starts=()
pids=()
for a in 1 2 3; do
  marks+=($(($(wc -l <"$WORK/agent$a.log") + 1)))
  starts+=("$(date +%s.%N)")
  (skopeo --insecure-policy copy -q --src-tls-verify=false "docker://${AGENTS[$((a - 1))]}/demo/app:latest" \
    "dir:$WORK/pull$a" && date +%s.%N >"$WORK/end$a") &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for a in 1 2 3; do
  row "agent $a (cold)" "$a" "${marks[$((a - 1))]}" \
    "$(awk -v x="${starts[$((a - 1))]}" -v y="$(cat "$WORK/end$a")" 'BEGIN {printf "%.2f s", y - x}')"
done
mark=$(($(wc -l <"$WORK/agent1.log") + 1))
start=$(date +%s.%N)
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://${AGENTS[0]}/demo/app:latest" \
  "dir:$WORK/pullagain"
row "agent 1 again" 1 "$mark" "$(awk -v x="$start" -v y="$(date +%s.%N)" 'BEGIN {printf "%.2f s", y - x}')"
echo
blobs=$(python3 -c 'import json,sys; print(sum(1 for b in json.load(open(sys.argv[1]))["blobs"] if "manifest" not in b["mediaType"]))' "$WORK/image.json")
gets=$(awk '/"GET \/v2\/demo\/app\/blobs\// {n++} END {print n + 0}' "$WORK/upstream.log")
echo "upstream registry served $gets blob GETs for the image's $blobs blobs, all fetched by the supernode:"
echo "each layer crossed the upstream link once for three agents and four pulls."
for a in 2 3 again; do
  if ! diff -r "$WORK/pull1" "$WORK/pull$a" >/dev/null; then
    echo "demo: pull $a differs from pull 1!" >&2
    exit 1
  fi
done
echo "all four pulls are byte-identical ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$WORK/image.json"))."
[ "$gets" = "$blobs" ] || { echo "demo: expected $blobs upstream blob GETs" >&2; exit 1; }
echo "agent 1's log lines (one per request):"
grep -E '/(manifests|blobs)/' "$WORK/agent1.log" | sed 's/^/  /' | cut -c1-160
