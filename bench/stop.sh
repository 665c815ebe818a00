#!/usr/bin/env bash
# Stop every server the bench started (by the pids in bench/run/*.pid only).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$BENCH_DIR/servers.sh"
stop_all
