#!/usr/bin/env bash
# The local demo from a bare machine: the test OIDC provider, a legacy app that shows the
# identity headers it receives, and the gateway in front of it. `--redis` keeps sessions
# in a local Redis instead of memory. Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec python -m demo.run "$@"
