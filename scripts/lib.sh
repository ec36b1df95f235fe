# Shared by scripts/demo.sh, benchmarks/run.sh and tests/e2e/run.sh (source it).
# A work directory whose processes are ended by PID at exit, waiting on log lines with a
# deadline, and a docker-registry on an ephemeral loopback port.

# ls_workdir PREFIX: makes $WORK, ends every PID in $PIDS at exit (newest first), runs
# ls_on_cleanup if the script defines it, then removes $WORK unless KEEP is set.
ls_workdir() {
  WORK=$(mktemp -d "/tmp/$1-XXXXXX")
  PIDS=()
  LS_PREFIX=$1
  trap ls_cleanup EXIT
}
ls_cleanup() {
  local status=$? i pid
  set +e  # cleanup is best effort and keeps the script's own exit status
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if declare -F ls_on_cleanup >/dev/null; then ls_on_cleanup; fi
  if [ -n "${KEEP:-}" ]; then
    echo "$LS_PREFIX: kept $WORK" >&2
  else
    # Daemons' helpers (containerd shims) may hold files for a moment after their parent exits.
    for i in $(seq 1 20); do rm -rf "$WORK" 2>/dev/null && break; sleep 0.25; done
    [ -e "$WORK" ] && echo "$LS_PREFIX: could not remove $WORK" >&2
  fi
  exit "$status"
}

# ls_wait_log FILE NEEDLE [SECONDS]: waits (default 30 s) for NEEDLE in FILE.
ls_wait_log() {
  local i
  for i in $(seq 1 $((${3:-30} * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 never said '$2':" >&2
  cat "$1" >&2
  return 1
}

# ls_listening FILE: the 127.0.0.1:PORT of the first "listening on" line.
ls_listening() {
  grep -o 'listening on [a-z:/]*127\.0\.0\.1:[0-9]*' "$1" | head -1 | grep -o '127\.0\.0\.1:[0-9]*'
}

# ls_start_registry NAME [YAML]: docker-registry serving $WORK/NAME-data, with the access log
# on and extra top-level YAML (proxy:, auth:); sets REGISTRY to its host:port.
ls_start_registry() {
  local name=$1 extra=${2:-}
  cat >"$WORK/$name.yml" <<YML
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $WORK/$name-data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:0", secret: layerswarm-$name}
$extra
YML
  docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  ls_wait_log "$WORK/$name.log" "listening on"
  REGISTRY=$(ls_listening "$WORK/$name.log")
}

# ls_start_nginx NAME ROOT TYPE NOPUSH [EXTRA]: nginx (one worker, no access log) serving ROOT
# with sendfile on an ephemeral loopback port: TYPE as its default_type, tcp_nopush NOPUSH and
# EXTRA as further http-level directives. Sets NGINX_PORT once it answers. Needs root.
ls_start_nginx() {
  local name=$1 root=$2 type=$3 nopush=$4 extra=${5:-} port i
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$WORK/$name.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $WORK/$name.pid;
error_log $WORK/$name-error.log;
events { worker_connections 256; }
http {
  sendfile on;
  tcp_nopush $nopush;
  $extra
  access_log off;
  default_type $type;
  server { listen 127.0.0.1:$port; root $root; }
}
CONF
  nginx -c "$WORK/$name.conf" &
  PIDS+=($!)
  for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  NGINX_PORT=$port
}

# ls_fd_peak FILE PERIOD PID...: in the background, the most descriptors any PID holds
# (/proc/PID/fd), sampled every PERIOD seconds (24,000 samples at most, until no PID is left),
# kept in FILE; LS_FD_PEAK_PID is the sampler. A glob, not ls: no fork per process and sample.
ls_fd_peak() {
  local out=$1 period=$2
  shift 2
  (
    peak=0
    for _ in $(seq 1 24000); do
      alive=0
      for pid in "$@"; do
        fds=(/proc/"$pid"/fd/*)
        [ -e "${fds[0]}" ] || continue
        alive=1
        if [ "${#fds[@]}" -gt "$peak" ]; then peak=${#fds[@]}; fi
      done
      [ "$alive" = 1 ] || break
      echo "$peak" >"$out"
      sleep "$period"  # the sampling period, not a synchronisation
    done
  ) &
  LS_FD_PEAK_PID=$!
}
