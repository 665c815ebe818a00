#!/usr/bin/env bash
# Scale figures: memory per 100,000 sessions, revoking one user's sessions among 1,000,000,
# back-channel logout propagation between two gateways sharing Redis (see scale.py).
#
#   bench/scale.sh                   all of it (a few minutes; Redis peaks at ~2 GiB)
#   bench/scale.sh --quick           10,000 / 100,000 sessions, 2 rounds, no doc update
#   options: --keep (leave the servers running) --no-doc; other options go to scale.py
#
# Uses redis database 1 of the bench's redis (flushed before and after) and two gateways
# A (:9220) and B (:9221), 1 worker each, Redis store, OP client bench-scale whose
# back-channel logout URI is B's. Writes bench/results/scale-<timestamp>.md and the scale
# block of docs/performance.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$BENCH_DIR/servers.sh"
cd "$BENCH_DIR"
KEEP=0 DOC=1 ARGS=()
while (($#)); do
  case $1 in
    --keep) KEEP=1 ;;
    --no-doc) DOC=0 ;;
    --quick) DOC=0; ARGS+=(--sessions 10000 --total 100000 --rounds 2) ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

ensure_tools
((KEEP)) || trap stop_all EXIT
make_tls
start_redis
start_op
start_nginx upstream "$UPSTREAM_PORT"
start_gateway gw-a "$GW_A_PORT" redis 1 "$SCALE_CLIENT_ID" 1
start_gateway gw-b "$GW_B_PORT" redis 1 "$SCALE_CLIENT_ID" 1

OUT="$BENCH_DIR/results/scale-$(date +%Y%m%d-%H%M%S).md"
mkdir -p "$BENCH_DIR/results"
{
  echo "From \`bench/scale.sh\` ($(date -Is); $(nproc) CPUs; redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'); gateway $(cd "$ROOT_DIR" && git rev-parse --short HEAD)):"
  echo
  "$PYTHON" scale.py "${ARGS[@]}"
} >"$OUT"
cat "$OUT"
((DOC)) && "$PYTHON" update_doc.py scale "$OUT"
log "written ${OUT#$ROOT_DIR/}"
