"""Upstreams over https: verified against a CA bundle, or unverified only when asked."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import parse_config
from gateway.web.app import build_app
from tests.support.tls import self_signed


@pytest.fixture
async def https_upstream(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> tuple[str, Path]:
    """An https upstream on 127.0.0.1 with a self-signed certificate (its own CA)."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="secure hello")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    server = await aiohttp_server(app, ssl=context)
    return f"https://127.0.0.1:{server.port}", cert


async def gateway_for(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], route: dict[str, Any]
) -> TestClient[Any, Any]:
    config = parse_config(yaml.safe_dump({"routes": [{"path": "/", "auth": "public", **route}]}))
    return await aiohttp_client(build_app(config))


async def test_unknown_certificate_is_refused_by_default(
    aiohttp_client: Any, https_upstream: tuple[str, Path]
) -> None:
    """Without a CA bundle the self-signed upstream is not trusted: 502, nothing forwarded."""
    url, _ = https_upstream
    client = await gateway_for(aiohttp_client, {"upstream": url})
    response = await client.get("/", headers={"Accept": "application/json"})
    assert 502 == response.status


async def test_ca_bundle_makes_the_upstream_trusted(
    aiohttp_client: Any, https_upstream: tuple[str, Path]
) -> None:
    """With tls.ca_file naming the upstream's CA the request goes through."""
    url, cert = https_upstream
    client = await gateway_for(aiohttp_client, {"upstream": url, "tls": {"ca_file": str(cert)}})
    response = await client.get("/")
    assert 200 == response.status
    assert "secure hello" == await response.text()


async def test_verification_off_only_by_explicit_option(
    aiohttp_client: Any, https_upstream: tuple[str, Path]
) -> None:
    """tls.verify: false accepts any certificate (and `gateway check` warns about it)."""
    url, _ = https_upstream
    client = await gateway_for(aiohttp_client, {"upstream": url, "tls": {"verify": False}})
    response = await client.get("/")
    assert 200 == response.status
