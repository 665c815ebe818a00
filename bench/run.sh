#!/usr/bin/env bash
# The benchmark: the gateway side by side with Apache + mod_auth_openidc, in one run.
#
#   bench/run.sh                 3 runs per scenario, wrk -t2 -c50 -d10s (2 s warm-up);
#                                rewrites the generated table of docs/performance.md
#   bench/run.sh --quick         1 run, 3 s, no doc update (for iteration)
#   options: -r RUNS -d DURATION -w WARMUP -t THREADS -c CONNS -o name,name (a subset;
#            "direct" is always kept) --keep (leave the servers running) --no-doc / --doc
#            -q PCT -Q SECS (before each run wait until other processes use <= PCT % of
#            the CPUs, at most SECS; default 10 % / 30 s)
#
# Installs what is missing (Debian apache2 libapache2-mod-auth-openidc nginx-light wrk
# redis-server, `npm ci` in tests/op, the gateway with its `fast` extra), starts every
# server on 127.0.0.1:9201-9217 (see common.sh), signs in and gets tokens, checks each
# scenario answers 200 with the upstream's body, measures, and writes
# bench/results/<timestamp>/: env.txt, raw/ (wrk output per run), results.jsonl, rss.txt,
# summary.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$BENCH_DIR/servers.sh"
cd "$BENCH_DIR"

RUNS=3 THREADS=2 CONNS=50 DURATION=10s WARMUP=2s PAUSE=1 QUIET_MAX=10 QUIET_TIMEOUT=30
ONLY="" KEEP=0 DOC=1
TIMEFORMAT='%U %S'
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while (($#)); do
  case $1 in
    --quick) RUNS=1 DURATION=3s WARMUP=1s QUIET_TIMEOUT=10 DOC=0 ;;
    -r) RUNS=$2; shift ;;
    -d) DURATION=$2; shift ;;
    -w) WARMUP=$2; shift ;;
    -t) THREADS=$2; shift ;;
    -c) CONNS=$2; shift ;;
    -o) ONLY=$2; shift ;;
    -q) QUIET_MAX=$2; shift ;;
    -Q) QUIET_TIMEOUT=$2; shift ;;
    --keep) KEEP=1 ;;
    --doc) DOC=1 ;;
    --no-doc) DOC=0 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 1 ;;
  esac
  shift
done

ensure_tools
((KEEP)) || trap stop_all EXIT
start_all

TS=$(date +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/results/$TS"
mkdir -p "$OUT/raw"

# ---------------------------------------------------------------- scenarios
# name | url | credential | matching mod_auth_openidc scenario | what
GW=http://127.0.0.1:$GW_PORT GWM=http://127.0.0.1:$GW_MEM_PORT AP=http://127.0.0.1:$APACHE_PORT
ALL=(
  "direct|http://127.0.0.1:$UPSTREAM_PORT/|none||bare upstream (nginx, 100-byte body)"
  "nginx-proxy|http://127.0.0.1:$NGINX_PROXY_PORT/|none||nginx reverse proxy, no auth"
  "apache-plain|$AP/plain/|none||Apache, no auth"
  "aiohttp-floor|http://127.0.0.1:$FLOOR_PORT/plain/|none||bare aiohttp proxy, gateway's upstream pool, nothing else (2 processes)"
  "raw-floor|http://127.0.0.1:$RAW_FLOOR_PORT/plain/|none||the same without aiohttp: httptools server, no HTTP library (2 processes)"
  "apache-cookie|$AP/|cookie:$AP/:mod_auth_openidc_session||mod_auth_openidc session cookie (redis)"
  "apache-jwt|$AP/api/|bearer:jwt||mod_auth_openidc JWT bearer (JWKS)"
  "apache-introspect|http://127.0.0.1:$APACHE_INTROSPECT_PORT/api/|bearer:opaque||mod_auth_openidc opaque bearer, cached introspection"
  "gw-plain|$GW/plain/|none|apache-plain|gateway public route"
  "gw-cookie-redis|$GW/|cookie:$GW/:gateway_session|apache-cookie|gateway session cookie, Redis store"
  "gw-cookie-memory|$GWM/|cookie:$GWM/:gateway_session|apache-cookie|gateway session cookie, memory store (1 worker)"
  "gw-jwt|$GW/api/|bearer:jwt|apache-jwt|gateway JWT bearer, local check"
  "gw-introspect|$GW/api-opaque/|bearer:opaque|apache-introspect|gateway opaque bearer, cached introspection"
  "fa-jwt|http://127.0.0.1:$FA_PORT/api/|bearer:jwt|apache-jwt|experiment: nginx proxies, asks the gateway by forward-auth, JWT"
  "fa-jwt-cached|http://127.0.0.1:$FA_CACHED_PORT/api/|bearer:jwt|apache-jwt|experiment: the same, nginx keeps the gateway's 200 for 1 s per token"
  "fa-introspect-cached|http://127.0.0.1:$FA_CACHED_PORT/api-opaque/|bearer:opaque|apache-introspect|experiment: the same, opaque token"
)
NAMES=() URLS=() CREDS=() PEERS=() WHATS=()
for line in "${ALL[@]}"; do
  IFS='|' read -r name url cred peer what <<<"$line"
  if [[ -n $ONLY && $name != direct && ",$ONLY," != *",$name,"* ]]; then continue; fi
  NAMES+=("$name") URLS+=("$url") CREDS+=("$cred") PEERS+=("$peer") WHATS+=("$what")
done
N=${#NAMES[@]}

# credential -> one request header (empty for none); one cookie/token per scenario
JWT=$("$PYTHON" get_token.py --kind jwt)
OPAQUE=$("$PYTHON" get_token.py --kind opaque)
HEADERS=()
for ((i = 0; i < N; i++)); do
  cred=${CREDS[i]}
  case $cred in
    none) h="" ;;
    cookie:*)
      rest=${cred#cookie:}; rp=${rest%:*}; cname=${rest##*:}
      h="Cookie: $("$PYTHON" login.py --rp "$rp" --cookie-name "$cname")" ;;
    bearer:jwt) h="Authorization: Bearer $JWT" ;;
    bearer:opaque) h="Authorization: Bearer $OPAQUE" ;;
    *) echo "bad credential $cred" >&2; exit 1 ;;
  esac
  HEADERS+=("$h")
done

# probe I -> "STATUS SIZE" of one response (headers + body)
probe() {
  local i=$1 args=(-s -o "$OUT/raw/.body" -w '%{http_code} %{size_header} %{size_download}')
  [[ -n ${HEADERS[i]} ]] && args+=(-H "${HEADERS[i]}")
  curl "${args[@]}" "${URLS[i]}" | awk '{print $1, $2 + $3}'
}

EXPECTED_BODY=$(curl -fsS "http://127.0.0.1:$UPSTREAM_PORT/")
SIZES=()
for ((i = 0; i < N; i++)); do
  read -r st size < <(probe "$i")
  if [[ $st != 200 || $(cat "$OUT/raw/.body") != "$EXPECTED_BODY" ]]; then
    echo "scenario ${NAMES[i]}: pre-check failed (HTTP $st: $(head -c 300 "$OUT/raw/.body"))" >&2
    exit 1
  fi
  SIZES+=("$size")
  log "pre-check ${NAMES[i]}: 200, $size bytes/response"
done

# ---------------------------------------------------------------- environment
version() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "?"; }
{
  echo "date:      $(date -Is)"
  echo "host:      $(uname -srm), $(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "loadavg:   $(cat /proc/loadavg)"
  echo "wrk:       $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}') -t$THREADS -c$CONNS -d$DURATION (warm-up $WARMUP), $RUNS run(s), order rotated"
  echo "gateway:   $(cd "$ROOT_DIR" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT_DIR" && [[ -n $(git status --porcelain -- gateway 2>/dev/null) ]] && echo "+local changes"), listen.workers 2 (memory store: 1), uvloop $(version uvloop), access_log off"
  echo "python:    $("$PYTHON" --version 2>&1 | awk '{print $2}'), aiohttp $(version aiohttp), redis-py $(version redis), PyJWT $(version PyJWT), cryptography $(version cryptography), httptools $(version httptools)"
  echo "peer:      Apache $(apache2 -v | awk -F'[/ ]' '/version/{print $4}') mpm_event 2x50 threads, mod_auth_openidc $(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc)"
  echo "others:    nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'), node $(node --version) + oidc-provider $(node -p "require('$ROOT_DIR/tests/op/node_modules/oidc-provider/package.json').version")"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

rss_line() { # LABEL
  local gw
  for gw in gw-redis gw-memory; do
    printf -- '- %s, %s: %s (%s MiB)\n' "$gw" "$1" \
      "$(tree_rss_kib "$(cat "$RUN_DIR/$gw.pid")") KiB" \
      "$(awk -v k="$(tree_rss_kib "$(cat "$RUN_DIR/$gw.pid")")" 'BEGIN {printf "%.1f", k / 1024}')"
  done
}
rss_line "before the runs (after sign-in and pre-checks)" >"$OUT/rss.txt"

# ---------------------------------------------------------------- runs
redact() { sed -E 's/(Bearer |=)[A-Za-z0-9._~+\/-]{12,}/\1<redacted>/g'; }
: >"$OUT/results.jsonl"
for ((run = 1; run <= RUNS; run++)); do
  for ((k = 0; k < N; k++)); do
    i=$(((k + run - 1) % N))
    name=${NAMES[i]}
    hdr=(); [[ -n ${HEADERS[i]} ]] && hdr=(-H "${HEADERS[i]}")
    quiet=$("$PYTHON" cpustat.py quiet --max "$QUIET_MAX" --timeout "$QUIET_TIMEOUT")
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "${hdr[@]}" "${URLS[i]}" >/dev/null 2>&1 || true
    log "run $run/$RUNS: $name (foreign CPU before: $quiet %)"
    raw="$OUT/raw/$name.run$run.txt"
    echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency -s wrk_report.lua ${hdr[*]:+-H '${HEADERS[i]}'} ${URLS[i]}" | redact >"$raw"
    s1=$("$PYTHON" cpustat.py snap)
    { time wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s wrk_report.lua "${hdr[@]}" "${URLS[i]}" >>"$raw" 2>&1; } 2>"$OUT/raw/.wrktime"
    s2=$("$PYTHON" cpustat.py snap)
    cpu=$("$PYTHON" cpustat.py diff "$s1" "$s2" "$(awk '{print $1 + $2}' "$OUT/raw/.wrktime")")
    read -r st _ < <(probe "$i")
    json=$(sed -n 's/^WRK_JSON //p' "$raw")
    [[ -n $json ]] || { echo "no WRK_JSON in $raw" >&2; exit 1; }
    printf '{"scenario":"%s","index":%d,"url":"%s","peer":"%s","what":"%s","run":%d,"order":%d,"expected_bytes":%d,"post_status":%s,"foreign_before_pct":%s,"cpu":%s,"wrk":%s}\n' \
      "$name" "$i" "${URLS[i]}" "${PEERS[i]}" "${WHATS[i]}" "$run" "$k" "${SIZES[i]}" "$st" "$quiet" "$cpu" "$json" >>"$OUT/results.jsonl"
    sleep "$PAUSE"
  done
done
rss_line "after the runs" >>"$OUT/rss.txt"

"$PYTHON" summarize.py "$OUT/results.jsonl" --env "$OUT/env.txt" --rss "$OUT/rss.txt" \
  --json "$OUT/summary.json" >"$OUT/summary.md"
cat "$OUT/summary.md"
if ((DOC)); then
  {
    echo "From \`bench/run.sh\` (results/$TS; reproduce with \`bench/run.sh\`, iterate with \`bench/run.sh --quick\`):"
    echo
    cat "$OUT/summary.md"
  } >"$OUT/doc-block.md"
  "$PYTHON" update_doc.py run "$OUT/doc-block.md"
fi
log "results in ${OUT#$ROOT_DIR/}/"
