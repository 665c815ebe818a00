"""Pushed Authorization Requests (RFC 9126) at login, against the real oidc-provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.errors import ProviderMisconfigured
from gateway.idp.discovery import ProviderMetadata
from gateway.login.par import par_endpoint
from tests.support.login import HTML_ACCEPT, http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
def par_required_op(tmp_path: Path) -> Iterator[OidcProvider]:
    """An OP that refuses every authorization request that was not pushed first."""
    op = OidcProvider(tmp_path / "op-par", env={"OP_REQUIRE_PAR": "1"})
    op.start()
    yield op
    op.stop()


async def _authorization_query(session: aiohttp.ClientSession, url: str) -> dict[str, list[str]]:
    start = await session.get(url, allow_redirects=False, headers={"Accept": HTML_ACCEPT})
    assert start.status == 302
    return parse_qs(urlsplit(start.headers["Location"]).query)


async def test_par_required_by_provider_login_with_private_key_jwt(
    gateway_factory: Any, par_required_op: OidcProvider, upstream: str
) -> None:
    """A provider that requires PAR gets every request pushed (private_key_jwt client auth):
    the browser's URL carries only request_uri and client_id, and the login completes."""
    assert par_required_op.discovery["require_pushed_authorization_requests"] is True
    gw, client = start_login_gateway(
        gateway_factory, par_required_op, upstream, auth_method="private_key_jwt"
    )
    async with jar() as session:
        query = await _authorization_query(session, f"{gw.url}/app")
        assert set(query) == {"client_id", "request_uri"}
        assert query["client_id"] == [client["client_id"]]
        assert query["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/app", user="erin")
        body = await landed.json()
    assert landed.status == 200
    assert body["headers"]["X-Auth-Request-User"] == "erin"


async def test_par_when_configured(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """`pushed_authorization: true` pushes the request to a provider that merely offers PAR:
    state, nonce and the PKCE challenge never appear in the browser's URL."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, provider={"pushed_authorization": True}
    )
    async with jar() as session:
        query = await _authorization_query(session, f"{gw.url}/x")
        assert set(query) == {"client_id", "request_uri"}
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/x", user="frank")
        assert landed.status == 200
        assert (await landed.json())["headers"]["X-Auth-Request-User"] == "frank"


def test_par_demanded_without_endpoint_fails_closed() -> None:
    """PAR asked for (by config or by the provider) without an advertised endpoint is an
    error, never a quiet fallback to a front-channel request."""
    bare = ProviderMetadata(issuer="https://op.example", raw={})
    required = ProviderMetadata(
        issuer="https://op.example", raw={"require_pushed_authorization_requests": True}
    )
    assert par_endpoint(bare, False, "op") is None
    with pytest.raises(ProviderMisconfigured):
        par_endpoint(bare, True, "op")
    with pytest.raises(ProviderMisconfigured):
        par_endpoint(required, False, "op")
