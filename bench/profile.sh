#!/usr/bin/env bash
# Profile the gateway under wrk load with py-spy: where a request's CPU time goes.
#
#   bench/profile.sh [SECONDS]     default 10 s per route
#
# For each of the gateway's public, session-cookie (Redis), JWT and cached-introspection
# routes: wrk -t2 -c50 runs while `py-spy record --subprocesses` samples both workers of
# gw-redis; writes bench/results/profile-<timestamp>/<route>.{txt.gz,svg} (collapsed
# stacks and a flame graph), <route>.dso.txt (perf's CPU split by binary, when perf is
# installed) and report.md (profile_report.py: kernel/interpreter split, shares of the
# Python samples by hot-path step, top functions). Starts the servers if they are not running and leaves them running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$BENCH_DIR/servers.sh"
cd "$BENCH_DIR"
SECS=${1:-10}

ensure_tools
command -v perf >/dev/null || {
  log "apt-get install linux-perf (the kernel/interpreter split)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-perf >/dev/null ||
    log "no perf: the report shows py-spy's Python shares only"
}
command -v py-spy >/dev/null || "$PYTHON" -m pip install -q py-spy
PYSPY=$(command -v py-spy || echo "$(dirname "$PYTHON")/py-spy")
start_all

OUT="$BENCH_DIR/results/profile-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
GW=http://127.0.0.1:$GW_PORT
COOKIE="Cookie: $("$PYTHON" login.py --rp "$GW/" --cookie-name gateway_session)"
JWT="Authorization: Bearer $("$PYTHON" get_token.py --kind jwt)"
OPAQUE="Authorization: Bearer $("$PYTHON" get_token.py --kind opaque)"
PID=$(cat "$RUN_DIR/gw-redis.pid")

profile() { # NAME URL [HEADER]
  local name=$1 url=$2 hdr=() wrk_pid perf_pid=""
  [[ -n ${3:-} ]] && hdr=(-H "$3")
  [[ $(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "$url") == 200 ]] || { log "$name: not 200"; return 1; }
  "$PYTHON" cpustat.py quiet --max 10 --timeout 30 >/dev/null
  wrk -t2 -c50 -d"$((SECS + 3))s" "${hdr[@]}" "$url" >"$OUT/$name.wrk.log" 2>&1 &
  wrk_pid=$!
  sleep 1
  log "profiling $name for ${SECS}s"
  if command -v perf >/dev/null; then
    # CPU time by binary (kernel / interpreter / C extensions): py-spy cannot see it.
    perf record -q -e cpu-clock -F 499 -p "$(pgrep -d, -P "$PID")" -o "$OUT/$name.perf" \
      -- sleep "$SECS" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  "$PYSPY" record --subprocesses --nonblocking --rate 250 -d "$SECS" --format raw \
    -o "$OUT/$name.txt" --pid "$PID" >/dev/null 2>"$OUT/$name.pyspy.log"
  "$PYSPY" record --subprocesses --nonblocking --rate 250 -d 3 --format flamegraph \
    -o "$OUT/$name.svg" --pid "$PID" >/dev/null 2>&1 || true
  wait "$wrk_pid" || true
  [[ -z $perf_pid ]] || wait "$perf_pid" || true
  if [[ -f "$OUT/$name.perf" ]]; then
    perf report -q -i "$OUT/$name.perf" --sort dso --stdio >"$OUT/$name.dso.txt" 2>/dev/null || true
    rm -f "$OUT/$name.perf"
  fi
}

profile gw-plain "$GW/plain/"
profile gw-cookie-redis "$GW/" "$COOKIE"
profile gw-jwt "$GW/api/" "$JWT"
profile gw-introspect "$GW/api-opaque/" "$OPAQUE"
gzip -9 "$OUT"/gw-{plain,cookie-redis,jwt,introspect}.txt
find "$OUT" -name "*.pyspy.log" -empty -delete
"$PYTHON" profile_report.py "$OUT"/gw-{plain,cookie-redis,jwt,introspect}.txt.gz >"$OUT/report.md"
cat "$OUT/report.md"
log "profiles in ${OUT#$ROOT_DIR/}/"
