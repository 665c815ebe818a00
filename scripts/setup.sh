#!/usr/bin/env bash
# Install what the demo and the tests need, only what is missing (sourced by test.sh and
# demo.sh): Debian packages, the test OP's npm dependencies, a .venv with the package.
# Works on a fresh clone on Debian 12 with python3 and node/npm present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv

say() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------------------
# 1. Debian packages: real servers for the tests (redis, chromium) and the bench tools
SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /usr/bin/$1 ]]; }
have redis-server || missing+=(redis-server)
have chromium || missing+=(chromium)
have nginx || missing+=(nginx-light)
have wrk || missing+=(wrk)
have curl || missing+=(curl)
have go || missing+=(golang-go)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------
# 2. the test OpenID Provider's npm dependencies (pinned by package-lock.json)
lock_hash=$(sha256sum tests/op/package-lock.json | cut -d' ' -f1)
stamp=tests/op/node_modules/.package-lock.sha256
if [[ ! -d tests/op/node_modules/oidc-provider || ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  say "npm ci (tests/op)"
  (cd tests/op && npm ci --no-audit --no-fund)
  echo "$lock_hash" >"$stamp"
fi

# axe-core for the accessibility checks of the gateway's pages (pinned by package-lock.json)
lock_hash=$(sha256sum tests/a11y/package-lock.json | cut -d' ' -f1)
stamp=tests/a11y/node_modules/.package-lock.sha256
if [[ ! -d tests/a11y/node_modules/axe-core || ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  say "npm ci (tests/a11y)"
  (cd tests/a11y && npm ci --no-audit --no-fund)
  echo "$lock_hash" >"$stamp"
fi

# ---------------------------------------------------------------------------
# 3. Python virtualenv with the package and its test extras
py_hash=$( (sha256sum pyproject.toml; python3 --version) | sha256sum | cut -d' ' -f1)
stamp=$VENV/.pyproject.sha256
if [[ ! -x $VENV/bin/python || ! -f $stamp || $(cat "$stamp") != "$py_hash" ]]; then
  say "virtualenv $VENV: pip install -e '.[test,fast]'"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test,fast]'
  echo "$py_hash" >"$stamp"
fi
export PATH=$VENV/bin:$PATH

