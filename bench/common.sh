# Shared settings of the benchmark harness. Source it, do not run it.
# Everything binds 127.0.0.1, on ports 9200-9299 (the peers' harness uses 9100-9199).
# shellcheck disable=SC2034

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$BENCH_DIR/.." && pwd)"
RUN_DIR="$BENCH_DIR/run"            # pid files, logs, rendered configs, TLS material (git-ignored)

OP_PORT=9201                # tests/op/op.mjs (oidc-provider)
UPSTREAM_PORT=9202          # nginx: fixed 100-byte body (the baseline)
NGINX_PROXY_PORT=9203       # nginx plain reverse proxy (reference: proxy cost alone)
APACHE_PORT=9204            # Apache + mod_auth_openidc: / cookie, /plain/, /api/ JWT
REDIS_PORT=9205             # one redis for Apache and the gateway
APACHE_INTROSPECT_PORT=9206 # Apache vhost 2: /api/ by introspection (cached)
OP_TLS_PORT=9208            # nginx TLS front for the OP (mod_auth_openidc wants https)
GW_PORT=9210                # gateway, Redis session store
GW_MEM_PORT=9211            # gateway, memory session store
FLOOR_PORT=9212             # bench/floor.py: aiohttp + the gateway's pool, nothing else
RAW_FLOOR_PORT=9216         # bench/floor.py --server raw: no aiohttp, httptools + the pool
GW_FA_PORT=9213             # native_plane.sh: the gateway answering nginx's forward-auth
FA_PORT=9214                # native_plane.sh: nginx proxying, asking the gateway each time
FA_CACHED_PORT=9215         # native_plane.sh: the same, keeping the gateway's 200s for 1 s
GW_A_PORT=9220              # scale.sh: two gateways sharing redis
GW_B_PORT=9221

OP_URL="http://127.0.0.1:$OP_PORT"
CLIENT_ID="bench-rp"
CLIENT_SECRET="bench-rp-secret-0123456789abcdef0123456789abcdef"
SCALE_CLIENT_ID="bench-scale"
SESSION_SECRET="bench-session-secret-0123456789abcdef0123456789"
ADMIN_TOKEN="bench-admin-token-0123456789abcdef"

if [[ -z ${PYTHON:-} ]]; then
  if [[ -x $ROOT_DIR/.venv/bin/python ]]; then PYTHON=$ROOT_DIR/.venv/bin/python; else PYTHON=python3; fi
fi

mkdir -p "$RUN_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# port_up PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT [SECONDS]
wait_port() {
  local port=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 10; i++)); do port_up "$port" && return 0; sleep 0.1; done
  log "timeout waiting for 127.0.0.1:$port"; return 1
}

# proc_alive PID -> 0 for a live, non-zombie process
proc_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# pid_alive PIDFILE
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && proc_alive "$pid"
}

# tree_rss_kib PID -> resident memory of PID and all its descendants, KiB
tree_rss_kib() {
  local pids
  pids=$(descendants "$1")
  # shellcheck disable=SC2086
  ps -o rss= -p $(echo $pids | tr ' ' ',') 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

# descendants PID -> PID and every descendant, space-separated
descendants() {
  local out=$1 kid
  for kid in $(pgrep -P "$1" 2>/dev/null); do out="$out $(descendants "$kid")"; done
  echo "$out"
}
