#!/usr/bin/env bash
# The unit tests against the OLDEST dependency versions pyproject.toml allows, so its declared
# minimums stay true. A second venv (.venv-oldest) gets the package and the test tools with
# every dependency pyproject.toml names pinned to its `>=` bound (scripts/lowest_constraints.py);
# their own dependencies resolve freely. Then the tests that need no browser and no big bodies
# run in it (about 25 s on 2 cores; the install about 30 s the
# first time, nothing when pyproject.toml is unchanged). Run by scripts/test.sh after
# scripts/setup.sh, whose redis-server and tests/op npm packages these tests use.
# Arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OLD=$ROOT/.venv-oldest
# the tests that run here: everything below these paths except -m browser/slow
UNIT_TESTS=(
  tests/config
  tests/idp
  tests/login
  tests/policy
  tests/proxy
  tests/sessions
  tests/tokens
  tests/test_cli.py
  tests/test_crypto.py
  tests/test_metrics.py
)
# the test tools these tests use; tests/conftest.py imports playwright (no browser needed here),
# tests/config/test_doc_blocks.py jsonschema
TOOLS=(pytest pytest-asyncio pytest-aiohttp pytest-timeout hypothesis playwright jsonschema)

stamp_input=$( (python3 --version; cat pyproject.toml scripts/lowest_constraints.py) | sha256sum)
if [[ ! -x $OLD/bin/python || ! -f $OLD/.stamp || $(cat "$OLD/.stamp") != "$stamp_input" ]]; then
  rm -rf "$OLD"
  python3 -m venv "$OLD"
  python3 scripts/lowest_constraints.py fast test >"$OLD/lowest.txt"
  "$OLD/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$OLD/lowest.txt" -e '.[fast]' "${TOOLS[@]}"
  echo "$stamp_input" >"$OLD/.stamp"
fi

echo "oldest allowed versions:" $(grep -v '^#' "$OLD/lowest.txt")
"$OLD/bin/python" -m pip check
PATH=$OLD/bin:$PATH exec "$OLD/bin/python" -m pytest -q -p no:cacheprovider \
  -m "not browser and not slow" "${UNIT_TESTS[@]}" "$@"
