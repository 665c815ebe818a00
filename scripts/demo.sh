#!/usr/bin/env bash
# The local demo from a bare machine: the test OIDC provider, a legacy app that shows the
# identity headers it receives, and the gateway in front of it. Installs only what the demo
# needs (scripts/setup.sh demo). `--redis` keeps sessions in a local Redis. Ctrl-C or SIGTERM
# stops everything; DEMO_BASE_PORT (default 9400) moves its four ports.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" demo "$@"
exec python -m demo.run "$@"
