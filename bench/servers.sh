# Start and stop the benchmark's servers. Source it after common.sh.
# Every server gets a pid file in bench/run/; stop_all stops exactly those pids.

export OP_PORT UPSTREAM_PORT NGINX_PROXY_PORT APACHE_PORT REDIS_PORT APACHE_INTROSPECT_PORT
export OP_TLS_PORT GW_PORT GW_MEM_PORT GW_A_PORT GW_B_PORT CLIENT_ID CLIENT_SECRET
export SCALE_CLIENT_ID SESSION_SECRET ADMIN_TOKEN RUN_DIR

# ensure_tools: Debian packages, the OP's npm dependencies, the gateway with uvloop
ensure_tools() {
  local missing=() p
  command -v apache2 >/dev/null || [[ -x /usr/sbin/apache2 ]] || missing+=(apache2)
  [[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ]] || missing+=(libapache2-mod-auth-openidc)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    local sudo=(); [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  export PATH="$PATH:/usr/sbin"
  if [[ ! -d $ROOT_DIR/tests/op/node_modules/oidc-provider ]]; then
    log "npm ci (tests/op)"
    (cd "$ROOT_DIR/tests/op" && npm ci --no-audit --no-fund)
  fi
  if ! "$PYTHON" -c 'import gateway, uvloop, aiohttp, redis, httptools' 2>/dev/null; then
    log "pip install -e '.[fast]'"
    "$PYTHON" -m pip install -q -e "$ROOT_DIR[fast]"
  fi
}

# render TEMPLATE OUT: replace @NAME@ by the value of $NAME
render() {
  local sed_args=() v
  for v in RUN OP_PORT UPSTREAM_PORT NGINX_PROXY_PORT APACHE_PORT REDIS_PORT \
           APACHE_INTROSPECT_PORT OP_TLS_PORT CLIENT_ID CLIENT_SECRET \
           GW_FA_PORT FA_PORT FA_CACHED_PORT; do
    sed_args+=(-e "s|@$v@|${!v}|g")
  done
  RUN=$RUN_DIR sed "${sed_args[@]}" "$1" >"$2"
}
RUN=$RUN_DIR

# make_tls: a throw-away CA and a server certificate for IP 127.0.0.1
make_tls() {
  local d="$RUN_DIR/tls"
  [[ -s $d/ca.pem && -s $d/server.pem && -s $d/server.key ]] && return 0
  log "tls: local CA + server certificate in ${d#$ROOT_DIR/}"
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gateway-bench local CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  chmod 755 "$d"; chmod 644 "$d/ca.pem" "$d/server.pem"; chmod 600 "$d/ca.key" "$d/server.key"
}

# busy PORT NAME: fail when a port is taken by something that is not ours
busy() {
  if port_up "$1"; then log "$2: port $1 is in use by another process"; return 0; fi
  return 1
}

start_op() {
  pid_alive "$RUN_DIR/op.pid" && return 0
  busy "$OP_PORT" op && return 1
  "$PYTHON" "$BENCH_DIR/configs.py" clients "$RUN_DIR/clients.json"
  OP_PORT=$OP_PORT OP_KEYS_FILE="$RUN_DIR/op-keys.json" OP_CLIENTS_FILE="$RUN_DIR/clients.json" \
    nohup node "$ROOT_DIR/tests/op/op.mjs" >>"$RUN_DIR/op.log" 2>&1 &
  echo $! >"$RUN_DIR/op.pid"
  local i
  for ((i = 0; i < 200; i++)); do
    curl -fsS "$OP_URL/.well-known/openid-configuration" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$OP_URL/.well-known/openid-configuration" >/dev/null || { log "op: did not start (see run/op.log)"; return 1; }
  log "op: up on :$OP_PORT (pid $(cat "$RUN_DIR/op.pid"))"
}

# start_nginx NAME PORT
start_nginx() {
  local name=$1 port=$2
  pid_alive "$RUN_DIR/nginx-$name.pid" && return 0
  busy "$port" "nginx-$name" && return 1
  mkdir -p "$RUN_DIR/nginx-tmp"
  render "$BENCH_DIR/conf/$name.conf" "$RUN_DIR/$name.conf"
  nginx -p "$RUN_DIR/" -e "$RUN_DIR/nginx-$name-error.log" -c "$RUN_DIR/$name.conf"
  wait_port "$port" 10
  log "nginx-$name: up on :$port"
}

start_redis() {
  pid_alive "$RUN_DIR/redis.pid" && return 0
  busy "$REDIS_PORT" redis && return 1
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" \
    --appendonly no --protected-mode yes --dir "$RUN_DIR" \
    --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log"
  wait_port "$REDIS_PORT" 10
  local i; for ((i = 0; i < 50; i++)); do [[ -s $RUN_DIR/redis.pid ]] && break; sleep 0.1; done
  log "redis: up on :$REDIS_PORT"
}

start_apache() {
  pid_alive "$RUN_DIR/apache.pid" && return 0
  busy "$APACHE_PORT" apache && return 1
  mkdir -p "$RUN_DIR/apache-rt"
  render "$BENCH_DIR/conf/httpd.conf" "$RUN_DIR/httpd.conf"
  apache2 -d "$RUN_DIR" -f "$RUN_DIR/httpd.conf" -k start
  wait_port "$APACHE_PORT" 10 && wait_port "$APACHE_INTROSPECT_PORT" 10
  local i; for ((i = 0; i < 50; i++)); do [[ -s $RUN_DIR/apache.pid ]] && break; sleep 0.1; done
  log "apache: up on :$APACHE_PORT and :$APACHE_INTROSPECT_PORT"
}

# start_gateway NAME PORT STORE [WORKERS] [CLIENT_ID] [REDIS_DB] [configs.py options...]
start_gateway() {
  local name=$1 port=$2 store=$3 workers=${4:-2} client=${5:-$CLIENT_ID} db=${6:-0} i
  shift $(($# < 6 ? $# : 6))
  pid_alive "$RUN_DIR/$name.pid" && return 0
  busy "$port" "$name" && return 1
  "$PYTHON" "$BENCH_DIR/configs.py" gateway "$RUN_DIR/$name.yaml" --port "$port" \
    --store "$store" --workers "$workers" --client-id "$client" --redis-db "$db" "$@"
  PYTHONUNBUFFERED=1 nohup "$PYTHON" -m gateway run -c "$RUN_DIR/$name.yaml" \
    >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  for ((i = 0; i < 300; i++)); do
    curl -fsS "http://127.0.0.1:$port/_gateway/healthz" >/dev/null 2>&1 && break
    pid_alive "$RUN_DIR/$name.pid" || break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/_gateway/healthz" >/dev/null 2>&1 \
    || { log "$name: did not start (see run/$name.log)"; tail -20 "$RUN_DIR/$name.log" >&2; return 1; }
  log "$name: up on :$port ($store store, $workers worker(s), pid $(cat "$RUN_DIR/$name.pid"))"
}

# start_floor NAME PORT SERVER: bench/floor.py, 2 processes like the gateway's workers
start_floor() {
  local name=$1 port=$2 server=$3
  pid_alive "$RUN_DIR/$name.pid" && return 0
  busy "$port" "$name" && return 1
  PYTHONPATH="$ROOT_DIR" nohup "$PYTHON" "$BENCH_DIR/floor.py" --port "$port" --server "$server" \
    --upstream-port "$UPSTREAM_PORT" --workers 2 >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  wait_port "$port" 20 || { log "$name: did not start (see run/$name.log)"; return 1; }
  log "$name: up on :$port"
}

# start_all: everything run.sh measures
start_all() {
  make_tls
  start_redis
  start_op
  start_nginx upstream "$UPSTREAM_PORT"
  start_nginx proxy "$NGINX_PROXY_PORT"
  start_nginx op-tls "$OP_TLS_PORT"
  start_apache
  # the memory store keeps sessions inside one process: one worker, or a session made
  # by one worker would be unknown to the other
  start_gateway gw-redis "$GW_PORT" redis 2
  start_gateway gw-memory "$GW_MEM_PORT" memory 1
  start_floor aiohttp-floor "$FLOOR_PORT" aiohttp
  start_floor raw-floor "$RAW_FLOOR_PORT" raw
  # the native-plane experiment: nginx proxies, the gateway decides by forward-auth
  start_gateway gw-fa "$GW_FA_PORT" redis 2 "$CLIENT_ID" 0 --trusted-proxy 127.0.0.1/32
  render "$BENCH_DIR/conf/forward-auth-locations.conf" "$RUN_DIR/forward-auth-locations.conf"
  start_nginx forward-auth "$FA_PORT"
}

# stop_pidfile NAME PIDFILE
stop_pidfile() {
  local name=$1 f=$2 pid i
  if ! pid_alive "$f"; then rm -f "$f"; return 0; fi
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do proc_alive "$pid" || break; sleep 0.1; done
  if proc_alive "$pid"; then log "$name: pid $pid still alive after 10 s, KILL"; kill -KILL "$pid"; fi
  rm -f "$f"
}

stop_all() {
  local f
  for f in "$RUN_DIR"/gw-*.pid "$RUN_DIR"/*-floor.pid; do
    [[ -e $f ]] && stop_pidfile "$(basename "$f" .pid)" "$f"
  done
  stop_pidfile apache "$RUN_DIR/apache.pid"
  for f in "$RUN_DIR"/nginx-*.pid; do [[ -e $f ]] && stop_pidfile "$(basename "$f" .pid)" "$f"; done
  stop_pidfile op "$RUN_DIR/op.pid"
  stop_pidfile redis "$RUN_DIR/redis.pid"
  log "stopped"
}
