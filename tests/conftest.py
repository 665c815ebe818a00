"""Shared fixtures: real servers, started once per session and stopped by pid.

Session fixtures (synchronous: subprocess + polling, independent of event loops):
  redis_server    RedisServer on a free port (in-memory; `.url`, `.flush()`)
  oidc_provider   OidcProvider: node tests/op/op.mjs (`.issuer`, `.register_client()`, ...)
  upstream        base URL (str) of the sample upstream app (tests/support/upstream.py)
  browser         Playwright Chromium (async API, session event loop; see support/browser.py)
Function fixtures:
  page                   a Playwright page in a fresh context
  gateway_factory        start GatewayProcess instances from config dicts; all stopped after
  fresh_oidc_provider    an OP of the test's own (to stop, restart, rotate keys)
  persistent_redis       a redis with AOF persistence of the test's own (stop/start keeps data)
  http_session           aiohttp ClientSession with an IP-friendly cookie jar
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# `tests.support` must be importable however pytest was started (python -m pytest
# puts the repo root on sys.path; the bare `pytest` script only puts tests/ there)
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import aiohttp  # noqa: E402

from tests.support.browser import browser, mark_browser_tests, page  # noqa: E402, F401
from tests.support.gateway import GatewayFactory, GatewayProcess  # noqa: E402
from tests.support.op import OidcProvider  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.upstream import UpstreamServer  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_browser_tests(config, items)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Shared in-memory redis; tests that need an empty store call `.flush()` first."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """Shared OP; register a client per test. Do not stop or restart it in a test:
    use `fresh_oidc_provider` for that."""
    op = OidcProvider(tmp_path_factory.mktemp("op"))
    op.start()
    yield op
    op.stop()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the sample upstream app, e.g. http://127.0.0.1:PORT (no trailing /)."""
    server = UpstreamServer(tmp_path_factory.mktemp("upstream"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def fresh_oidc_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    op = OidcProvider(tmp_path / "op")
    op.start()
    yield op
    op.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """`gateway_factory(config, name="gateway", port=None, start=True, env=None)`.

    Returns a GatewayProcess; with start=False it is not started yet (its `.url` is
    known, fill in `.config` and call `.start()`). Every gateway is stopped after the
    test, and its log is printed (pytest shows it when the test fails).
    """
    made: list[GatewayProcess] = []

    def factory(
        config: Mapping[str, Any],
        *,
        name: str = "gateway",
        port: int | None = None,
        start: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> GatewayProcess:
        if any(g.name == name for g in made):
            name = f"{name}-{len(made)}"
        gw = GatewayProcess(config, tmp_path / name, name=name, port=port, env=env)
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield factory
    for gw in made:
        gw.stop()
        log = gw.log_text()
        if log:
            print(f"----- log of {gw.name} ({gw.url}) -----\n{log[-20000:]}")


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose cookie jar keeps cookies of IP hosts (127.0.0.1)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session
