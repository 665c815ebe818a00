"""Certificate-bound access tokens (RFC 8705) on bearer routes, tokens from the real OP."""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.support.client_certs import ThrowawayCa, escaped
from tests.support.gateway import REPO_ROOT, GatewayProcess
from tests.support.logout_tokens import op_private_key
from tests.support.op import OidcProvider, OPError, _http
from tests.support.processes import ManagedProcess
from tests.web.test_bearer_routes import API, trusted_issuer

CERT_HEADER = "X-Client-Cert"


@pytest.fixture
def mtls_op(tmp_path: Path) -> Iterator[OidcProvider]:
    """An OP that binds tokens to the client certificate its "TLS proxy" header names."""
    op = OidcProvider(tmp_path / "op-mtls", env={"OP_MTLS": "1"})
    op.start()
    yield op
    op.stop()


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCa:
    return ThrowawayCa(tmp_path / "ca")


def bound_token(op: OidcProvider, pem: str) -> str:
    """A client_credentials JWT bound to the certificate ``pem`` (cnf.x5t#S256)."""
    client = op.register_client(tls_client_certificate_bound_access_tokens=True)
    form = {"grant_type": "client_credentials", "resource": "urn:test:api", "scope": "api:read"}
    headers = op.client_auth(client, form)
    headers.update({"Accept": "application/json", "x-test-client-cert": escaped(pem)})
    status, _, body = _http("POST", op.endpoint("token"), form=form, headers=headers)
    if status != 200:
        raise OPError("mTLS token request", status, body)
    token = str(json.loads(body)["access_token"])
    assert "x5t#S256" in jwt.decode(token, options={"verify_signature": False})["cnf"]
    return token


def api_config(op: OidcProvider, upstream: str, **bearer: Any) -> dict[str, Any]:
    return {
        "routes": [{"path": "/api/", "upstream": upstream, "auth": "bearer"}],
        "bearer": {"issuers": [trusted_issuer(op, op.register_client())], **bearer},
    }


async def get(url: str, token: str, **kwargs: Any) -> tuple[int, dict[str, Any], str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    headers.update(kwargs.pop("headers", {}))
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, **kwargs) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, body, response.headers.get("WWW-Authenticate", "")


async def test_certificate_from_trusted_proxy_header(
    gateway_factory: Any, mtls_op: OidcProvider, upstream: str, ca: ThrowawayCa
) -> None:
    """Behind a trusted proxy that passes the client certificate, a bound token passes with
    its certificate (the header never reaches the upstream) and gets 401 invalid_token with
    another certificate or none."""
    _, _, mine = ca.issue("client-a")
    _, _, other = ca.issue("client-b")
    token = bound_token(mtls_op, mine)
    gw = gateway_factory(
        {**api_config(mtls_op, upstream, client_certificate_header=CERT_HEADER),
         "trusted_proxies": ["127.0.0.1/32"]}
    )  # fmt: skip
    url = f"{gw.url}/api/x"
    status, body, _ = await get(url, token, headers={CERT_HEADER: escaped(mine)})
    assert status == 200
    assert CERT_HEADER.lower() not in {k.lower() for k in body["headers"]}
    for headers in ({CERT_HEADER: escaped(other)}, {}):
        status, body, challenge = await get(url, token, headers=headers)
        assert status == 401
        assert "headers" not in body
        assert 'error="invalid_token"' in challenge


async def test_certificate_header_from_untrusted_peer_is_ignored(
    gateway_factory: Any, mtls_op: OidcProvider, upstream: str, ca: ThrowawayCa
) -> None:
    """A client that is not a trusted proxy cannot vouch for a certificate by header."""
    _, _, mine = ca.issue("client-a")
    token = bound_token(mtls_op, mine)
    gw = gateway_factory(api_config(mtls_op, upstream, client_certificate_header=CERT_HEADER))
    status, body, _ = await get(f"{gw.url}/api/x", token, headers={CERT_HEADER: escaped(mine)})
    assert status == 401
    assert "headers" not in body


@pytest.fixture
def tls_gateway(
    tmp_path: Path, mtls_op: OidcProvider, upstream: str, ca: ThrowawayCa
) -> Iterator[GatewayProcess]:
    """A gateway terminating TLS, asking clients for a certificate of `ca` (optional)."""
    server_cert, server_key, _ = ca.issue("server", server=True)
    config = api_config(mtls_op, upstream)
    config["listen"] = {"tls": {"cert_file": str(server_cert), "key_file": str(server_key),
                                "client_ca_file": str(ca.cert_file)}}  # fmt: skip
    gw = GatewayProcess(config, tmp_path / "tls-gw", name="tls-gw")
    process = ManagedProcess(
        "tls-gw",
        [sys.executable, "-m", "gateway", "run", "-c", str(gw.write_config())],
        log_path=gw.workdir / "tls-gw.log",
        env=gw.env,
        cwd=REPO_ROOT,
        ready_port=gw.port,
    )
    process.start()
    try:
        yield gw
    finally:
        process.stop()
        print(process.log_tail())


def client_tls(ca: ThrowawayCa, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert_file))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


async def test_certificate_from_tls_at_the_gateway(
    tls_gateway: GatewayProcess, mtls_op: OidcProvider, ca: ThrowawayCa
) -> None:
    """When the gateway terminates TLS with client certificates, a bound token passes over a
    connection with its certificate and gets 401 over one with another certificate or none."""
    mine_cert, mine_key, mine = ca.issue("client-a")
    other_cert, other_key, _ = ca.issue("client-b")
    token = bound_token(mtls_op, mine)
    url = f"https://127.0.0.1:{tls_gateway.port}/api/x"
    status, body, _ = await get(url, token, ssl=client_tls(ca, (mine_cert, mine_key)))
    assert status == 200
    assert body["path"] == "/api/x"
    for cert in ((other_cert, other_key), None):
        status, body, challenge = await get(url, token, ssl=client_tls(ca, cert))
        assert status == 401
        assert "headers" not in body
        assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize("cnf", [{"jwk": {"kty": "EC", "crv": "P-256"}}, {"jkt": None}, "x"])
async def test_a_binding_the_gateway_cannot_check_never_reaches_the_upstream(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, cnf: Any
) -> None:
    """A token signed by the real OP's key whose cnf names no method the gateway checks
    (RFC 7800 jwk) or is malformed: 401 invalid_token, and the upstream serves nothing;
    the same token without cnf is served (the positive control)."""
    key, kid = op_private_key(oidc_provider)
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "aud": API, "sub": "svc", "iat": now, "exp": now + 300}
    gw = gateway_factory(api_config(oidc_provider, upstream))
    url = f"{gw.url}/api/x"

    def token(**extra: Any) -> str:
        return jwt.encode({**claims, **extra}, key, "RS256", headers={"kid": kid, "typ": "at+jwt"})

    status, body, _ = await get(url, token())
    assert (status, body["path"]) == (200, "/api/x")
    status, body, challenge = await get(url, token(cnf=cnf))
    assert status == 401
    assert "headers" not in body  # the echo upstream answers with what it received
    assert 'error="invalid_token"' in challenge
