#!/usr/bin/env bash
# Install what is missing, and only that, for one purpose (sourced by demo.sh and test.sh):
#   source scripts/setup.sh demo [--redis]   python3-venv, the test OP's npm packages, a .venv
#                                            with the package and its `demo` extra (redis-server
#                                            too with --redis)
#   source scripts/setup.sh test             all of the above plus the Debian packages the tests
#                                            and the bench use, and the `test` and `fast` extras
# Works on a fresh clone on Debian 12 with python3 and node/npm present. Python packages are
# pinned by requirements/constraints.txt. SETUP_USE_VENV=<dir> uses that existing virtualenv
# as it is instead of ./.venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
SETUP_FOR=${1:?usage: source scripts/setup.sh demo|test [--redis]}
shift

say() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------------------
# 1. Debian packages
SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /usr/bin/$1 ]]; }
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

# the demo's optional session store
if [[ $SETUP_FOR == demo && " $* " == *" --redis "* ]]; then
  have redis-server || missing+=(redis-server)
fi

# real servers for the tests (redis, chromium, nginx) and the bench tools: one per line
test_packages() {
  have redis-server || missing+=(redis-server)
  have chromium || missing+=(chromium)
  have nginx || missing+=(nginx-light)
  have wrk || missing+=(wrk)
  have curl || missing+=(curl)
  have ss || missing+=(iproute2)  # the listener's backlog, read from the kernel
  have go || missing+=(golang-go)
  # the differential suite's real upstreams and proxies (tests/differential/)
  have php-cgi || missing+=(php-cgi)
  have caddy || missing+=(caddy)
  have gunicorn || missing+=(gunicorn)
  have javac || missing+=(default-jdk-headless)
  [[ -x /usr/share/tomcat10/bin/catalina.sh ]] || missing+=(tomcat10-common)
  [[ -f /usr/share/java/tomcat10-servlet-api.jar ]] || missing+=(libtomcat10-java)
  # Prometheus and promtool: the shipped rules and dashboard checked against a live scrape
  have prometheus || missing+=(prometheus)
}
if [[ $SETUP_FOR == test ]]; then test_packages; fi

if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------
# 2. the test OpenID Provider's npm dependencies (pinned by package-lock.json); the demo
# runs the same provider
lock_hash=$(sha256sum tests/op/package-lock.json | cut -d' ' -f1)
stamp=tests/op/node_modules/.package-lock.sha256
if [[ ! -d tests/op/node_modules/oidc-provider || ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  say "npm ci (tests/op)"
  (cd tests/op && npm ci --no-audit --no-fund)
  echo "$lock_hash" >"$stamp"
fi

# the tests' other npm packages, pinned the same way: the differential suite's Express
# upstream (express + method-override) and axe-core for the pages' accessibility checks
npm_ci() {
  local dir=$1 probe=$2 lock_hash stamp
  lock_hash=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  stamp=$dir/node_modules/.package-lock.sha256
  if [[ ! -d $dir/node_modules/$probe || ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
    say "npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund)
    echo "$lock_hash" >"$stamp"
  fi
}
if [[ $SETUP_FOR == test ]]; then
  npm_ci tests/differential/express express
  npm_ci tests/a11y axe-core
fi

# ---------------------------------------------------------------------------
# 3. Python virtualenv with the package and the extras for this purpose. One .venv serves
# both: a stamp per purpose records what was installed from which pyproject/constraints.
case $SETUP_FOR in
  demo) extras=demo ;;
  test) extras=test,fast,demo,tracing,rego ;;
  *) echo "setup.sh: unknown purpose '$SETUP_FOR' (demo or test)" >&2; exit 2 ;;
esac
if [[ -n ${SETUP_USE_VENV:-} ]]; then
  # an existing virtualenv that has the packages (the demo's clean-clone test passes the test
  # suite's own): used as it is, nothing is installed into it
  VENV=$SETUP_USE_VENV
else
  py_hash=$( (cat pyproject.toml requirements/constraints.txt; python3 --version) | sha256sum | cut -d' ' -f1)
  stamp=$VENV/.installed-$SETUP_FOR.sha256
  if [[ ! -x $VENV/bin/python || ! -f $stamp || $(cat "$stamp") != "$py_hash" ]]; then
    say "virtualenv $VENV: pip install -e '.[$extras]'"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      -c requirements/constraints.txt -e ".[$extras]"
    echo "$py_hash" >"$stamp"
    # the test extras include the demo's: the demo needs no install after the tests'
    [[ $SETUP_FOR != test ]] || echo "$py_hash" >"$VENV/.installed-demo.sha256"
  fi
fi
export PATH=$VENV/bin:$PATH
