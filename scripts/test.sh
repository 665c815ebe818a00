#!/usr/bin/env bash
# The whole test suite from a bare machine: install what is missing (scripts/setup.sh test),
# then run every check: ruff check, ruff format --check, mypy, pytest -q "$@", and, for the
# whole suite only (no arguments), the unit tests on the oldest allowed dependency versions
# (scripts/oldest-deps.sh). Arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x tests/web
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" test

# ---------------------------------------------------------------------------
# 4. the checks: all of them run, the exit status says whether any failed
failed=()
run() {
  say "$*"
  if ! "$@"; then failed+=("$*"); fi
}
run ruff check .
run ruff format --check .
run mypy
run python -m pytest -q "$@"
if (($# == 0)); then run scripts/oldest-deps.sh; fi

if ((${#failed[@]})); then
  say "FAILED: $(printf '%s; ' "${failed[@]}")"
  exit 1
fi
say "all checks passed"
