"""The external HTTP authorizer: allow, deny, timeout (fail closed), cached decisions, all
against a real authorizer process, a real gateway, the real OP and a real upstream."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.authorizer import AuthorizerServer
from tests.support.op import OidcProvider
from tests.web.test_bearer_routes import API, call, trusted_issuer


@pytest.fixture
def authorizer(tmp_path: Path) -> Iterator[AuthorizerServer]:
    server = AuthorizerServer(tmp_path / "authorizer")
    server.start()
    yield server
    server.stop()


def read_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def decisions(authorizer: AuthorizerServer) -> int:
    return int(read_json(f"{authorizer.url}/count")["decisions"])


def start(factory: Any, op: OidcProvider, upstream: str, **authorizer: Any) -> Any:
    rs = op.register_client()
    gw = factory({
        "routes": [{"path": "/", "upstream": upstream, "auth": "bearer",
                    "authorizer": {"upstream_headers": ["X-Authz-Verdict"], **authorizer}}],
        "bearer": {"issuers": [trusted_issuer(op, rs)]},
    })  # fmt: skip
    return gw, rs


async def test_authorizer_allows_denies_and_adds_only_listed_headers(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, authorizer: AuthorizerServer
) -> None:
    """Allowed: the upstream gets the authorizer's listed header (not the unlisted one, nor
    a client's forged copy). Denied (path /private, or no api:read): 403, never served."""
    gw, rs = start(gateway_factory, oidc_provider, upstream, url=f"{authorizer.url}/decide")
    reader = oidc_provider.client_credentials_token(rs, resource=API, scope="api:read")
    status, body, _ = await call(f"{gw.url}/reports?q=1", reader, **{"X-Authz-Verdict": "forged"})
    assert 200 == status
    assert f"ok for {rs['client_id']}" == body["headers"]["X-Authz-Verdict"]
    assert "X-Not-Listed" not in body["headers"]
    asked = read_json(f"{authorizer.url}/last")
    assert ("GET", "/reports?q=1") == (asked["method"], asked["path"])
    assert rs["client_id"] == asked["principal"]["subject"]
    status, body, _ = await call(f"{gw.url}/private/x", reader)
    assert (403, None) == (status, body and body.get("raw_path"))
    writer = oidc_provider.client_credentials_token(rs, resource=API, scope="api:write")
    status, body, _ = await call(f"{gw.url}/reports", writer)
    assert (403, None) == (status, body and body.get("raw_path"))
    log = gw.log_text()
    assert "authorizer refused: private area" in log
    assert "authorizer refused: needs api:read" in log


@pytest.mark.parametrize("endpoint", ["slow", "broken"])
async def test_authorizer_timeout_or_failure_fails_closed(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    authorizer: AuthorizerServer,
    endpoint: str,
) -> None:
    """An authorizer that does not answer in time, or answers 500, refuses with 503; the
    upstream never serves the request."""
    gw, rs = start(
        gateway_factory, oidc_provider, upstream, url=f"{authorizer.url}/{endpoint}", timeout=0.5
    )
    token = oidc_provider.client_credentials_token(rs, resource=API, scope="api:read")
    status, body, _ = await call(f"{gw.url}/reports", token)
    assert 503 == status
    assert body is None or "raw_path" not in body
    assert "authorizer_unavailable" in gw.log_text()


async def test_cached_decisions_are_counted_at_the_authorizer(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, authorizer: AuthorizerServer
) -> None:
    """With cache_ttl, five identical requests cost the authorizer one decision; another
    path costs one more; without a cache every request is asked."""
    gw, rs = start(
        gateway_factory, oidc_provider, upstream, url=f"{authorizer.url}/decide", cache_ttl=60
    )
    token = oidc_provider.client_credentials_token(rs, resource=API, scope="api:read")
    before = decisions(authorizer)
    for _ in range(5):
        assert 200 == (await call(f"{gw.url}/reports", token))[0]
    assert before + 1 == decisions(authorizer)
    assert 200 == (await call(f"{gw.url}/other", token))[0]
    assert before + 2 == decisions(authorizer)
    plain, _ = start(gateway_factory, oidc_provider, upstream, url=f"{authorizer.url}/decide")
    for _ in range(3):
        assert 200 == (await call(f"{plain.url}/reports", token))[0]
    assert before + 5 == decisions(authorizer)
